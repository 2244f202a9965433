package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// runConsole measures the console's pages on a carrier-sized store: a registry of n
// subscriptions and m expirations (most reserved, some stalled, held or terminated), each
// page fetched over loopback HTTP as a signed-in operator, beside its floor — the store
// query the page is built on, called directly.
func runConsole(args []string) error {
	fs := newFlags("console")
	n := fs.Int("n", 1_000_000, "registry subscriptions")
	m := fs.Int("m", 100_000, "expirations")
	reps := fs.Int("reps", 200, "requests per page")
	db := fs.String("db", "", "kooflow store: empty for SQLite in a temporary directory, or a postgres:// URL (an empty database)")
	_ = fs.Parse(args)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "kooflow-bench-console-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dsn := *db
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(dir, "kooflow.db")
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	started := time.Now()
	if err := seedConsole(ctx, st, *n, *m); err != nil {
		return err
	}
	fmt.Printf("\nconsole on %s: %d subscriptions, %d expirations (seeded in %.0f s); %d requests per page, one at a time\n",
		st.Dialect(), *n, *m, time.Since(started).Seconds(), *reps)

	c, err := console.New(console.Config{
		Store: st, SessionKey: []byte("bench-console-session-key-32-bytes!!"), Logger: quiet(),
		Operator: func(a starter.Actor) console.Operator {
			return &starter.Operator{Store: st, Actor: a, Dial: func(context.Context) (client.Client, error) {
				return nil, fmt.Errorf("the console benchmark does not act")
			}}
		},
	})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	jar := &cookieJar{}
	cl := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if _, err := fetch(cl, srv.URL+c.SignInLink("bench", console.RoleOperator)); err != nil {
		return err
	}

	rnd := rand.New(rand.NewPCG(1, 2))
	user := func() string { return fmt.Sprintf("user-con-%07d", rnd.IntN(*n)) }
	expiry := func() string { return fmt.Sprintf("expire/koogallery/con-%07d/current", rnd.IntN(*m)) }
	pages := []struct {
		name  string
		path  func() string
		floor func() error
	}{
		{"overview", func() string { return "/" }, func() error { _, err := st.CountExpirations(ctx); return err }},
		{"list, all", func() string { return "/expirations" }, func() error {
			_, _, err := st.ListExpirations(ctx, store.ExpirationQuery{Limit: 50})
			return err
		}},
		{"list, stalled", func() string { return "/expirations?state=stalled" }, func() error {
			_, _, err := st.ListExpirations(ctx, store.ExpirationQuery{States: []string{store.StateStalled}, Limit: 50})
			return err
		}},
		{"list, reserved page 100", func() string { return "/expirations?state=reserved&page=100" }, func() error {
			_, _, err := st.ListExpirations(ctx, store.ExpirationQuery{States: []string{store.StateReserved}, Limit: 50, Offset: 99 * 50})
			return err
		}},
		{"search by carrier user", func() string { return "/expirations?q=" + user() }, func() error {
			_, err := st.FindSubscriptions(ctx, user(), 100)
			return err
		}},
		{"expiration detail", func() string { return "/expiration?id=" + url.QueryEscape(expiry()) }, func() error {
			_, err := st.Expiration(ctx, expiry())
			return err
		}},
		{"registry search", func() string { return "/registry?q=" + user() }, func() error {
			_, err := st.FindSubscriptions(ctx, user(), 20)
			return err
		}},
		{"deliveries", func() string { return "/deliveries" }, func() error {
			_, err := st.Deliveries(ctx, store.DeliveryFilter{Limit: 200})
			return err
		}},
	}
	fmt.Printf("%-26s %9s %9s %9s   %s\n", "page", "p50", "p95", "max", "floor p95 (the store query alone)")
	for _, p := range pages {
		var lat, floor []time.Duration
		for range *reps {
			t := time.Now()
			status, err := fetch(cl, srv.URL+p.path())
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			if status != http.StatusOK {
				return fmt.Errorf("%s answered %d", p.name, status)
			}
			lat = append(lat, time.Since(t))
			t = time.Now()
			if err := p.floor(); err != nil {
				return fmt.Errorf("%s floor: %w", p.name, err)
			}
			floor = append(floor, time.Since(t))
		}
		fmt.Printf("%-26s %9s %9s %9s   %s\n", p.name, pct(lat, 50), pct(lat, 95), pct(lat, 100), pct(floor, 95))
	}
	return nil
}

// seedConsole fills st with n subscriptions and m expirations of the first m of them:
// 1 in 50 stalled, 1 in 200 held as a conflict, 1 in 500 terminated, the rest reserved.
func seedConsole(ctx context.Context, st *store.Store, n, m int) error {
	const batch = 10_000
	for start := 0; start < n; start += batch {
		var subs []store.Subscription
		for i := start; i < min(start+batch, n); i++ {
			subs = append(subs, store.Subscription{InstanceID: fmt.Sprintf("con-%07d", i), OrderID: fmt.Sprintf("order-con-%07d", i),
				CarrierUserID: fmt.Sprintf("user-con-%07d", i), PackageID: "pkg-50GB"})
		}
		if _, err := st.UpsertSubscriptions(ctx, subs); err != nil {
			return fmt.Errorf("seed the registry: %w", err)
		}
	}
	for i := range m {
		state := store.StateReserved
		switch {
		case i%500 == 0:
			state = store.StateTerminated
		case i%200 == 0:
			state = store.StateConflict
		case i%50 == 0:
			state = store.StateStalled
		}
		id := fmt.Sprintf("con-%07d", i)
		if _, err := st.RecordExpiration(ctx, store.Expiration{WorkflowID: "expire/koogallery/" + id + "/current", Source: "koogallery",
			Subject: id, Period: "current", SubscriptionID: int64(i + 1), CarrierUserID: "user-" + id, PackageID: "pkg-50GB", State: state}); err != nil {
			return fmt.Errorf("seed expirations: %w", err)
		}
	}
	return nil
}

// fetch GETs url and returns its status, reading the whole body as a browser does.
func fetch(cl *http.Client, url string) (int, error) {
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// pct is the p-th percentile of ds (100: the maximum).
func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := min(len(s)-1, len(s)*p/100)
	return s[i].Round(10 * time.Microsecond)
}

// cookieJar keeps the console's session cookie (one site).
type cookieJar struct{ cookies []*http.Cookie }

func (j *cookieJar) SetCookies(_ *url.URL, cookies []*http.Cookie) {
	for _, c := range cookies {
		j.cookies = append([]*http.Cookie{c}, j.cookies...)
	}
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	if len(j.cookies) == 0 {
		return nil
	}
	return j.cookies[:1]
}
