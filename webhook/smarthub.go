package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

type smartHubHandler struct {
	cfg Config
	log *deliveryLog
}

// smartHubOutcome is the answer to one push and what to count and log about it.
type smartHubOutcome struct {
	status       int
	detail       string
	kind         string
	eventID      string
	workflowID   string
	rejectReason string
	// subject is the SIM package (gIccid/packageCode) once the body was read.
	subject string
	// outcome and rule classify the push for the delivery log (store.Delivery*);
	// outcome is empty for a refusal (rejectReason) or an unavailable store (503).
	outcome, rule string
	// request is the body as received, without its signature.
	request string
	// recorded is set when the intake committed the delivery with the expiry.
	recorded bool
}

// deliveryOutcome classifies the push for the delivery log.
func (o smartHubOutcome) deliveryOutcome() (kind, reason string) {
	switch {
	case o.rejectReason != "":
		return store.DeliveryRefused, o.rejectReason
	case o.status == http.StatusServiceUnavailable:
		return store.DeliveryUnavailable, ""
	case o.outcome != "":
		return o.outcome, o.rule
	}
	return store.DeliveryAccepted, ""
}

func (h *smartHubHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	out := h.handle(r, start)
	if out.status == http.StatusOK {
		writeJSON(w, http.StatusOK, struct{}{})
	} else {
		writeJSON(w, out.status, problem{Title: http.StatusText(out.status), Status: out.status, Detail: out.detail})
	}
	m := h.cfg.Metrics
	m.WebhookRequests.WithLabelValues("smarthub", out.kind, fmt.Sprint(out.status)).Inc()
	m.WebhookDuration.WithLabelValues("smarthub").Observe(time.Since(start).Seconds())
	if out.rejectReason != "" {
		m.DeliveriesRejected.WithLabelValues("smarthub", out.rejectReason).Inc()
	}
	log := h.cfg.Logger.Info
	if out.status != http.StatusOK {
		log = h.cfg.Logger.Warn
	}
	log("SmartHub push answered", "eventId", out.eventID, "kind", out.kind, "status", out.status, "detail", out.detail,
		"workflowId", out.workflowID, "duration", time.Since(start))
	if out.recorded {
		kind, _ := out.deliveryOutcome()
		h.log.counted(starter.SourceSmartHub, kind)
		return
	}
	h.log.record(h.delivery(out, start))
}

// delivery is the stored form of a push and its answer.
func (h *smartHubHandler) delivery(out smartHubOutcome, received time.Time) store.Delivery {
	kind, reason := out.deliveryOutcome()
	return store.Delivery{
		Source: starter.SourceSmartHub, ReceivedAt: received, Activity: out.kind, Subject: out.subject, Outcome: kind, Reason: reason,
		Answer: strconv.Itoa(out.status), Detail: out.detail, WorkflowID: out.workflowID, Request: out.request,
	}
}

// withoutSignature is a push's body for the delivery log: its signature field removed,
// bounded to 2 KB. A body that is not a JSON object is kept as received (bounded).
func withoutSignature(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return truncate(string(body), 2048)
	}
	delete(fields, "signature")
	b, err := json.Marshal(fields)
	if err != nil {
		return truncate(string(body), 2048)
	}
	return truncate(string(b), 2048)
}

func (h *smartHubHandler) handle(r *http.Request, start time.Time) smartHubOutcome {
	if !smarthub.ValidAPIKey(h.cfg.SmartHubAPIKey, r.Header.Get("X-API-Key")) {
		detail := "X-API-Key is missing or wrong"
		if h.cfg.SmartHubAPIKey == "" {
			detail = "SmartHub intake is disabled: SMARTHUB_API_KEY is not set"
		}
		return smartHubOutcome{status: http.StatusUnauthorized, detail: detail, rejectReason: "auth"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, smarthub.MaxBodyBytes))
	if err != nil {
		return smartHubOutcome{status: http.StatusBadRequest, detail: fmt.Sprintf("body is larger than %d bytes", smarthub.MaxBodyBytes), rejectReason: "oversize"}
	}
	request := withoutSignature(body)
	ev, err := smarthub.Decode(body)
	if err != nil {
		return smartHubOutcome{status: http.StatusBadRequest, detail: err.Error(), rejectReason: "malformed", request: request}
	}
	out := smartHubOutcome{eventID: ev.EventID, kind: ev.Data.TriggerType, request: request}
	if ev.Data.GIccid != "" {
		out.subject = starter.SmartHubSubject(ev.Data.GIccid, ev.Data.PackageCode)
	}
	if out.kind == "" {
		out.kind = ev.EventType
	}
	if h.cfg.SmartHubSignatureMode != smarthub.SignatureOff && !smarthub.VerifySignature(h.cfg.SmartHubAPIKey, ev.Envelope) {
		if h.cfg.SmartHubSignatureMode == smarthub.SignatureEnforce {
			out.status, out.detail, out.rejectReason = http.StatusUnauthorized, "signature does not verify", "auth"
			return out
		}
		h.cfg.Logger.Warn("SmartHub signature does not match the assumed algorithm; accepted (SMARTHUB_SIGNATURE_MODE=log)",
			"eventId", ev.EventID, "datePush", ev.DatePush, "signature", ev.Signature)
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ProcessTimeout)
	defer cancel()
	stored, _, err := h.cfg.Store.RecordSmartHubEvent(ctx, store.SmartHubEvent{
		EventID: ev.EventID, EventType: ev.EventType, TriggerType: ev.Data.TriggerType, GIccid: ev.Data.GIccid,
		PackageCode: ev.Data.PackageCode, ValidThru: ev.ValidThru, Raw: string(body),
	})
	if err != nil {
		h.cfg.Logger.Error("could not store SmartHub event", "eventId", ev.EventID, "error", err)
		out.status, out.detail = http.StatusServiceUnavailable, "store unavailable; please retry"
		return out
	}
	switch {
	case stored.Status == store.EventStarted || stored.Status == store.EventStored:
		out.status, out.workflowID, out.detail, out.outcome = http.StatusOK, stored.WorkflowID, "duplicate delivery", store.DeliveryDuplicate
		return out
	case !ev.IsPackageExpired():
		if err := h.cfg.Store.SetSmartHubEventStatus(ctx, ev.EventID, store.EventStored, "", ""); err != nil {
			out.status, out.detail = http.StatusServiceUnavailable, "store unavailable; please retry"
			return out
		}
		out.status, out.detail = http.StatusOK, "stored: not a package expiry"
		return out
	}
	accepted := smartHubOutcome{status: http.StatusOK, kind: out.kind, subject: out.subject, request: out.request}
	v, acc, err := h.cfg.Intake.AcceptSmartHubExpiry(ctx, stored, h.delivery(accepted, start))
	switch {
	case errors.Is(err, starter.ErrUnmatched):
		// The push is valid; refusing it would make SmartHub retry forever. An operator
		// fixes the registry and replays it.
		h.cfg.Metrics.SmartHubUnmatched.Inc()
		out.status, out.detail, out.outcome = http.StatusOK, "unmatched: SIM/package not in the registry", store.DeliveryUnmatched
	case err != nil:
		h.cfg.Logger.Error("could not accept SmartHub expiration", "eventId", ev.EventID, "error", err)
		out.status, out.detail = http.StatusServiceUnavailable, "store unavailable; please retry"
	case !v.Accept:
		out.status, out.detail, out.outcome, out.rule = http.StatusOK, "ignored: "+v.Ignored, store.DeliveryIgnored, v.Rule
	default:
		out.outcome = store.DeliveryAccepted
		if acc.Existing {
			out.outcome = store.DeliveryDuplicate
		} else {
			h.cfg.Metrics.ExpirationsStarted.WithLabelValues(starter.SourceSmartHub).Inc()
		}
		out.status, out.workflowID, out.recorded = http.StatusOK, acc.WorkflowID, true
	}
	return out
}
