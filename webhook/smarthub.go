package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

type smartHubHandler struct {
	cfg Config
}

// smartHubOutcome is the answer to one push and what to count and log about it.
type smartHubOutcome struct {
	status       int
	detail       string
	kind         string
	eventID      string
	workflowID   string
	rejectReason string
}

func (h *smartHubHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	out := h.handle(r)
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
}

func (h *smartHubHandler) handle(r *http.Request) smartHubOutcome {
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
	ev, err := smarthub.Decode(body)
	if err != nil {
		return smartHubOutcome{status: http.StatusBadRequest, detail: err.Error(), rejectReason: "malformed"}
	}
	out := smartHubOutcome{eventID: ev.EventID, kind: ev.Data.TriggerType}
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
		out.status, out.workflowID, out.detail = http.StatusOK, stored.WorkflowID, "duplicate delivery"
		return out
	case !ev.IsPackageExpired():
		if err := h.cfg.Store.SetSmartHubEventStatus(ctx, ev.EventID, store.EventStored, "", ""); err != nil {
			out.status, out.detail = http.StatusServiceUnavailable, "store unavailable; please retry"
			return out
		}
		out.status = http.StatusOK
		return out
	}
	v, acc, err := h.cfg.Intake.AcceptSmartHubExpiry(ctx, stored, store.Delivery{})
	switch {
	case errors.Is(err, starter.ErrUnmatched):
		// The push is valid; refusing it would make SmartHub retry forever. An operator
		// fixes the registry and replays it.
		h.cfg.Metrics.SmartHubUnmatched.Inc()
		out.status, out.detail = http.StatusOK, "unmatched: SIM/package not in the registry"
	case err != nil:
		h.cfg.Logger.Error("could not accept SmartHub expiration", "eventId", ev.EventID, "error", err)
		out.status, out.detail = http.StatusServiceUnavailable, "store unavailable; please retry"
	case !v.Accept:
		out.status, out.detail = http.StatusOK, "ignored: "+v.Ignored
	default:
		if !acc.Existing {
			h.cfg.Metrics.ExpirationsStarted.WithLabelValues(starter.SourceSmartHub).Inc()
		}
		out.status, out.workflowID = http.StatusOK, acc.WorkflowID
	}
	return out
}
