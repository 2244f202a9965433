package webhook

import (
	"context"
	"encoding/json"
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
const maxKooGalleryBody = koogallery.MaxV2Body

type kooGalleryHandler struct {
	cfg Config
	log *deliveryLog
}

// outcome is the answer to one KooGallery call and what to log about it.
type outcome struct {
	code       koogallery.ResultCode
	msg        string
	activity   string
	subject    string
	workflowID string
	// instanceID and info are the activity-specific answer fields.
	instanceID string
	info       []instanceInfo
	// rejectReason is set when the delivery was refused (a store.Refused* kind).
	rejectReason string
	// kind is what kooflow made of the call when the answer's code alone does not say
	// (store.DeliveryIgnored, DeliveryDuplicate, DeliveryConflict); see deliveryOutcome.
	kind string
	// rule names the rule that ignored the call.
	rule string
	// recorded is set when the delivery was committed with the intake's intent.
	recorded bool
}

// deliveryOutcome classifies the call for the delivery log: what the handler said it
// was, else what its answer's code means, and the refusal's kind or the ignoring rule.
func (o outcome) deliveryOutcome() (kind, reason string) {
	switch {
	case o.kind != "":
		return o.kind, o.rule
	case o.code == koogallery.Success:
		return store.DeliveryAccepted, ""
	case o.rejectReason != "":
		return store.DeliveryRefused, o.rejectReason
	case o.code == koogallery.InternalError:
		return store.DeliveryUnavailable, ""
	}
	return store.DeliveryRefused, string(o.code)
}

func (o *outcome) set(code koogallery.ResultCode, msg string) outcome {
	o.code, o.msg = code, msg
	return *o
}

// instanceInfo is one entry of a V2 queryInstance answer.
type instanceInfo struct {
	InstanceID string  `json:"instanceId"`
	AppInfo    appInfo `json:"appInfo"`
}

type appInfo struct {
	FrontEndURL string `json:"frontEndUrl"`
	Memo        string `json:"memo,omitempty"`
}

// answerBody is the JSON of every answer: the common result and activity fields.
type answerBody struct {
	ResultCode koogallery.ResultCode `json:"resultCode"`
	ResultMsg  string                `json:"resultMsg"`
	InstanceID string                `json:"instanceId,omitempty"`
	Info       []instanceInfo        `json:"info,omitempty"`
}

func (h *kooGalleryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ProcessTimeout)
	defer cancel()

	out, c := h.read(r)
	c.rawQuery = r.URL.RawQuery
	if out.code == "" {
		// The work runs in its own goroutine so that a hung dependency cannot hold the
		// answer past KooGallery's timeout. If it finishes after we answered 000005,
		// KooGallery's retry finds the work done and gets 000000.
		done := make(chan outcome, 1)
		go func() { done <- h.dispatch(ctx, c, out) }()
		select {
		case out = <-done:
		case <-ctx.Done():
			out.code, out.msg = koogallery.InternalError, "kooflow could not finish in time; please retry"
		}
	}
	h.answer(w, out)

	h.cfg.Metrics.WebhookRequests.WithLabelValues("koogallery", activityLabel(out.activity), string(out.code)).Inc()
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
	if out.recorded {
		kind, _ := out.deliveryOutcome()
		h.log.counted(starter.SourceKooGallery, kind)
		return
	}
	d := h.delivery(c, out)
	d.ReceivedAt = start
	h.log.record(d)
}

// answer writes the JSON result, signing exactly the bytes sent (Body-Sign, spec §3.3).
func (h *kooGalleryHandler) answer(w http.ResponseWriter, out outcome) {
	body, err := json.Marshal(answerBody{ResultCode: out.code, ResultMsg: truncate(out.msg, 255), InstanceID: out.instanceID, Info: out.info})
	if err != nil {
		body = []byte(`{"resultCode":"000005","resultMsg":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set(koogallery.BodySignHeaderName, koogallery.BodySignHeader(h.cfg.KooGalleryKey, body))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// delivery is the stored form of a call and its answer, without credentials.
func (h *kooGalleryHandler) delivery(c call, out outcome) store.Delivery {
	request := redactQuery(c.rawQuery)
	if c.version == 2 {
		request = truncate(string(c.body), 2048)
	}
	kind, reason := out.deliveryOutcome()
	return store.Delivery{
		Source: starter.SourceKooGallery, Activity: out.activity, Subject: out.subject, Outcome: kind, Reason: reason,
		Answer: string(out.code), Detail: out.msg, WorkflowID: out.workflowID, Request: request,
	}
}

// redactQuery drops the credentials from a raw query before it is stored.
func redactQuery(raw string) string {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return truncate(raw, 2048)
	}
	for _, k := range []string{"authToken", "signature"} {
		values.Del(k)
	}
	return truncate(values.Encode(), 2048)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// read authenticates a V1 (GET, authToken) or V2 (POST, signed body) request and
// normalises it. It returns an outcome with a code when the request is refused.
func (h *kooGalleryHandler) read(r *http.Request) (outcome, call) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxKooGalleryBody))
	if err != nil {
		return outcome{code: koogallery.InvalidParam, msg: fmt.Sprintf("request body is larger than %d bytes", maxKooGalleryBody), rejectReason: "oversize"}, call{}
	}
	params, err := koogallery.ParseQuery(r.URL.RawQuery)
	if err != nil {
		reason := "malformed"
		if len(r.URL.RawQuery) > koogallery.MaxQueryBytes {
			reason = "oversize"
		}
		return outcome{code: koogallery.InvalidParam, msg: err.Error(), rejectReason: reason}, call{}
	}
	if r.Method == http.MethodPost {
		return h.readV2(params, body)
	}
	out := outcome{activity: params["activity"], subject: params["instanceId"]}
	if err := koogallery.VerifyAuthToken(h.cfg.KooGalleryKey, params); err != nil {
		out.code, out.msg, out.rejectReason = koogallery.AuthFailed, "authentication failed: "+err.Error(), "auth"
		return out, call{}
	}
	if err := koogallery.CheckV1Common(params); err != nil {
		out.code, out.msg, out.rejectReason = koogallery.InvalidParam, err.Error(), "malformed"
		return out, call{}
	}
	return out, callFromV1(params)
}

func (h *kooGalleryHandler) readV2(params koogallery.Params, body []byte) (outcome, call) {
	auth := koogallery.V2Auth{Signature: params["signature"], Timestamp: params["timestamp"], Nonce: params["nonce"]}
	if err := koogallery.VerifyV2(h.cfg.KooGalleryKey, auth, body, time.Now()); err != nil {
		return outcome{code: koogallery.AuthFailed, msg: "authentication failed: " + err.Error(), rejectReason: "auth"}, call{}
	}
	req, err := koogallery.DecodeV2(body)
	if err != nil {
		return outcome{code: koogallery.InvalidParam, msg: err.Error(), rejectReason: "malformed"}, call{}
	}
	c := callFromV2(req)
	c.nonce, c.body = auth.Nonce, body
	return outcome{activity: req.Activity, subject: req.InstanceID}, c
}

// knownActivities are the KooGallery activities kooflow handles (V1 and V2).
var knownActivities = map[string]bool{
	"newInstance": true, "refreshInstance": true, "expireInstance": true, "releaseInstance": true,
	"instanceStatus": true, "updateInstanceStatus": true, "queryInstance": true,
}

// activityLabel bounds the metric label: the activity comes from the request, before
// authentication, so anything kooflow does not know is counted as "other".
func activityLabel(activity string) string {
	if knownActivities[activity] {
		return activity
	}
	return "other"
}
