package webhook

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kooflow/kooflow/metrics"
	"github.com/kooflow/kooflow/store/storetest"
)

// TestUnauthenticatedActivitiesDoNotMintMetricSeries: the activity label is read before
// authentication, so a caller inventing activities must not grow the registry.
func TestUnauthenticatedActivitiesDoNotMintMetricSeries(t *testing.T) {
	m := metrics.New()
	router := NewRouter(Config{KooGalleryKey: "k", Store: storetest.OpenSQLite(t), Metrics: m})
	before := testutil.CollectAndCount(m.WebhookRequests)
	for _, activity := range []string{"invented-1", "invented-2", "invented-3"} {
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/koogallery/produce?activity="+activity+"&instanceId=i&authToken=bad&timeStamp=1", nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "000001") {
			t.Fatalf("%s: %d %s", activity, rec.Code, rec.Body)
		}
	}
	if got := testutil.ToFloat64(m.WebhookRequests.WithLabelValues("koogallery", "other", "000001")); got != 3 {
		t.Fatalf(`requests{activity="other",code="000001"} = %v, want 3`, got)
	}
	if after := testutil.CollectAndCount(m.WebhookRequests); after > before+1 {
		t.Fatalf("series grew from %d to %d for invented activities", before, after)
	}
}
