package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// maxKooGalleryBody bounds a produce request's body; V1 requests carry none.
const maxKooGalleryBody = 64 << 10

type kooGalleryHandler struct {
	cfg Config
}

// outcome is the answer to one KooGallery call and what to log about it.
type outcome struct {
	code       koogallery.ResultCode
	msg        string
	activity   string
	subject    string
	workflowID string
	// rejectReason is set when the delivery was refused before processing.
	rejectReason string
}

func (h *kooGalleryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ProcessTimeout)
	defer cancel()

	out, params := h.verify(r)
	if out.code == "" {
		// The work runs in its own goroutine so that a hung dependency cannot hold the
		// answer past KooGallery's timeout. If it finishes after we answered 000005,
		// KooGallery's retry finds the expiry already started and gets 000000.
		done := make(chan outcome, 1)
		go func() { done <- h.dispatch(ctx, params, out) }()
		select {
		case out = <-done:
		case <-ctx.Done():
			out.code, out.msg = koogallery.InternalError, "kooflow could not finish in time; please retry"
		}
	}
	h.answer(w, out)

	h.cfg.Metrics.WebhookRequests.WithLabelValues("koogallery", out.activity, string(out.code)).Inc()
	h.cfg.Metrics.WebhookDuration.WithLabelValues("koogallery").Observe(time.Since(start).Seconds())
	if out.rejectReason != "" {
		h.cfg.Metrics.DeliveriesRejected.WithLabelValues("koogallery", out.rejectReason).Inc()
	}
	level := slog.LevelInfo
	if out.code != koogallery.Success {
		level = slog.LevelWarn
	}
	h.cfg.Logger.Log(r.Context(), level, "KooGallery call answered", "activity", out.activity, "instanceId", out.subject,
		"workflowId", out.workflowID, "resultCode", out.code, "resultMsg", out.msg, "duration", time.Since(start))
	h.record(r, out)
}

// answer writes the JSON result, signing exactly the bytes sent.
func (h *kooGalleryHandler) answer(w http.ResponseWriter, out outcome) {
	body, err := json.Marshal(koogallery.Result{ResultCode: out.code, ResultMsg: truncate(out.msg, 255)})
	if err != nil {
		body = []byte(`{"resultCode":"000005","resultMsg":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set(koogallery.BodySignHeaderName, koogallery.BodySignHeader(h.cfg.KooGalleryKey, body))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// record keeps the delivery in the store, without its credentials. It runs after the
// answer and on its own deadline, so a slow store cannot delay KooGallery.
func (h *kooGalleryHandler) record(r *http.Request, out outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := h.cfg.Store.RecordDelivery(ctx, store.Delivery{
		Source: starter.SourceKooGallery, Activity: out.activity, Subject: out.subject, Outcome: string(out.code),
		Detail: out.msg, WorkflowID: out.workflowID, Request: redactQuery(r.URL.RawQuery),
	})
	if err != nil {
		h.cfg.Logger.Warn("could not record KooGallery delivery", "instanceId", out.subject, "error", err)
	}
}

// verify reads and authenticates the request. It returns an outcome with a code when the
// request is refused, and the verified parameters otherwise.
func (h *kooGalleryHandler) verify(r *http.Request) (outcome, koogallery.Params) {
	if r.Method == http.MethodPost {
		return outcome{code: koogallery.InvalidParam, msg: "the V2 POST interface is not enabled on this endpoint; send V1 GET requests", rejectReason: "malformed"}, nil
	}
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(nil, r.Body, maxKooGalleryBody)); err != nil {
		return outcome{code: koogallery.InvalidParam, msg: fmt.Sprintf("request body is larger than %d bytes", maxKooGalleryBody), rejectReason: "oversize"}, nil
	}
	params, err := koogallery.ParseQuery(r.URL.RawQuery)
	if err != nil {
		reason := "malformed"
		if len(r.URL.RawQuery) > koogallery.MaxQueryBytes {
			reason = "oversize"
		}
		return outcome{code: koogallery.InvalidParam, msg: err.Error(), rejectReason: reason}, nil
	}
	out := outcome{activity: params["activity"], subject: params["instanceId"]}
	if err := koogallery.VerifyAuthToken(h.cfg.KooGalleryKey, params); err != nil {
		out.code, out.msg, out.rejectReason = koogallery.AuthFailed, "authentication failed: "+err.Error(), "auth"
		return out, nil
	}
	return out, params
}

// dispatch handles a verified request by its activity.
func (h *kooGalleryHandler) dispatch(ctx context.Context, params koogallery.Params, out outcome) outcome {
	switch out.activity {
	case koogallery.ActivityExpireInstance:
		return h.expire(ctx, params, out)
	case "":
		out.code, out.msg, out.rejectReason = koogallery.InvalidParam, "parameter activity is required", "malformed"
	default:
		out.code, out.msg, out.rejectReason = koogallery.InvalidParam, fmt.Sprintf("activity %q is not supported", out.activity), "malformed"
	}
	return out
}

func (h *kooGalleryHandler) expire(ctx context.Context, params koogallery.Params, out outcome) outcome {
	req, err := koogallery.ParseExpire(params)
	if err != nil {
		out.code, out.msg, out.rejectReason = koogallery.InvalidParam, err.Error(), "malformed"
		return out
	}
	sub, err := h.cfg.Store.SubscriptionByInstance(ctx, req.InstanceID)
	if errors.Is(err, store.ErrNotFound) {
		out.code, out.msg = koogallery.InstanceNotFound, fmt.Sprintf("instance %s does not exist", req.InstanceID)
		return out
	}
	if err != nil {
		h.cfg.Logger.Error("registry lookup failed", "instanceId", req.InstanceID, "error", err)
		out.code, out.msg = koogallery.InternalError, "registry unavailable; please retry"
		return out
	}
	in := starter.ExpirationInput(starter.SourceKooGallery, req.InstanceID, sub, req.Test)
	res, err := h.cfg.Starter.StartExpiration(ctx, in)
	if err != nil {
		h.cfg.Logger.Error("could not start expiration", "instanceId", req.InstanceID, "error", err)
		out.code, out.msg = koogallery.InternalError, "workflow service unavailable; please retry"
		return out
	}
	out.workflowID = res.WorkflowID
	if !res.Existing {
		h.cfg.Metrics.ExpirationsStarted.WithLabelValues(starter.SourceKooGallery).Inc()
	}
	out.code, out.msg = koogallery.Success, "success."
	return out
}

// redactQuery drops the authToken from a raw query before it is stored.
func redactQuery(raw string) string {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return truncate(raw, 2048)
	}
	values.Del("authToken")
	return truncate(values.Encode(), 2048)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
