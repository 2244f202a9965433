// Package webhook is kooflow's HTTP intake: a gorilla/mux router with the KooGallery
// produce and SmartHub push endpoints and health and readiness checks. Accepted expiries
// and stops are committed to the store through starter.Intake and answered at once;
// Temporal is reached later by the relay, so its outages and slowdowns never reach the
// senders. Metrics are served on their own address, not on the public intake port.
package webhook

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/smarthub"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// DefaultProcessTimeout bounds the work behind one KooGallery answer, leaving room
// inside KooGallery's 5-second timeout to write the answer.
const DefaultProcessTimeout = 4 * time.Second

// Config holds the intake's dependencies.
type Config struct {
	// KooGalleryKey is the seller Key: it verifies authTokens and signs answers.
	KooGalleryKey string
	// SmartHubAPIKey authenticates SmartHub pushes (X-API-Key); empty disables them.
	SmartHubAPIKey string
	// SmartHubSignatureMode says what to do with a push's body signature; default log.
	SmartHubSignatureMode smarthub.SignatureMode
	// Store is kooflow's store: registry, deliveries, nonces, SmartHub events.
	Store Store
	// Intake commits accepted expiries and stops for the relay.
	Intake Intake
	// Temporal, when set, is reported by /readyz for information: the intake is ready
	// whenever the store is, because it does not need Temporal to answer.
	Temporal client.Client
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	// ProcessTimeout defaults to DefaultProcessTimeout.
	ProcessTimeout time.Duration
	// FrontEndURL is the appInfo.frontEndUrl of V2 queryInstance answers; default
	// DefaultFrontEndURL.
	FrontEndURL string
}

// Intake is what the handlers need from the intake outbox; *starter.Intake implements it.
type Intake interface {
	AcceptExpiry(ctx context.Context, v starter.Verdict, delivery store.Delivery, smartHubEventID string) (store.Acceptance, error)
	AcceptStop(ctx context.Context, source, subject, reason, detail string) (store.StopAcceptance, error)
	AcceptSmartHubExpiry(ctx context.Context, ev store.SmartHubEvent, delivery store.Delivery) (starter.Verdict, store.Acceptance, error)
}

// Store is what the handlers and the readiness check need from kooflow's store;
// *store.Store implements it.
type Store interface {
	Ping(ctx context.Context) error
	Backlog(ctx context.Context) (store.IntentBacklog, error)
	RecordDelivery(ctx context.Context, d store.Delivery) (int64, error)
	UseNonce(ctx context.Context, nonce string, keep time.Duration) (bool, error)
	SubscriptionByInstance(ctx context.Context, instanceID string) (store.Subscription, error)
	SubscriptionByOrder(ctx context.Context, orderID string) (store.Subscription, error)
	ProvisionInstance(ctx context.Context, sub store.Subscription) (store.Subscription, bool, error)
	Renew(ctx context.Context, subscriptionID int64, expire time.Time, renewalOrderID string, now time.Time) (store.RenewResult, error)
	SetStatus(ctx context.Context, subscriptionID int64, status, detail string) (bool, error)
	RecordSmartHubEvent(ctx context.Context, e store.SmartHubEvent) (store.SmartHubEvent, bool, error)
	SetSmartHubEventStatus(ctx context.Context, eventID, status, workflowID, detail string) error
}

var (
	_ Intake = (*starter.Intake)(nil)
	_ Store  = (*store.Store)(nil)
)

// DefaultFrontEndURL is where a KooDrive benefit is used: KooDrive's own site.
const DefaultFrontEndURL = "https://intl.myhuaweicloud-koodrive.com"

// NewRouter returns the intake's routes.
func NewRouter(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProcessTimeout == 0 {
		cfg.ProcessTimeout = DefaultProcessTimeout
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.FrontEndURL == "" {
		cfg.FrontEndURL = DefaultFrontEndURL
	}
	r := mux.NewRouter()
	log := &deliveryLog{store: cfg.Store, metrics: cfg.Metrics, logger: cfg.Logger}
	kg := &kooGalleryHandler{cfg: cfg, log: log}
	r.Handle("/koogallery/produce", kg).Methods(http.MethodGet, http.MethodPost)
	if cfg.SmartHubSignatureMode == "" {
		cfg.SmartHubSignatureMode = smarthub.SignatureLog
	}
	r.Handle("/smarthub/events", &smartHubHandler{cfg: cfg, log: log}).Methods(http.MethodPost)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	r.HandleFunc("/readyz", readiness(cfg)).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, problem{Title: "not found", Status: 404, Detail: "no such endpoint: " + r.URL.Path})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, problem{Title: "method not allowed", Status: 405, Detail: r.Method + " is not allowed on " + r.URL.Path})
	})
	return r
}

// problem is an RFC 7807 error body for the non-KooGallery endpoints.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// readiness answers 200 while the store answers: that is all the intake needs to accept
// deliveries. Temporal's health and the relay's backlog are reported alongside, so an
// operator sees at a glance why expirations are queued.
func readiness(cfg Config) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]any{}
		status := http.StatusOK
		if err := cfg.Store.Ping(ctx); err != nil {
			checks["store"], status = err.Error(), http.StatusServiceUnavailable
		} else {
			checks["store"] = "ok"
			if b, err := cfg.Store.Backlog(ctx); err == nil {
				checks["pendingIntents"] = b.Pending
			}
		}
		if cfg.Temporal != nil {
			if _, err := cfg.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
				checks["temporal"] = "unavailable (deliveries are accepted and queued): " + err.Error()
			} else {
				checks["temporal"] = "ok"
			}
		}
		writeJSON(w, status, checks)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
