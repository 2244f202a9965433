package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/starter"
)

// TestBrowserSignInThroughTheCarriersIdentityProvider: a console that signs operators in
// through OpenID Connect (an in-process provider here) sends the browser to the provider
// and back, and the operator lands on the overview under the name and role the
// provider's claims give; someone whose groups map to no role is refused, with a page
// that says why.
func TestBrowserSignInThroughTheCarriersIdentityProvider(t *testing.T) {
	e, b := newBrowserEnv(t)
	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.Start(l, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	roles, err := console.ParseRoles("viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins")
	if err != nil {
		t.Fatal(err)
	}
	st := e.app.Store
	c, err := console.New(console.Config{
		Store: st, SessionKey: []byte("a-browser-test-session-key-of-32-bytes"),
		Operator: func(a starter.Actor) console.Operator {
			return &starter.Operator{Store: st, Actor: a, Dial: func(context.Context) (client.Client, error) {
				return nil, errors.New("this console reads only")
			}}
		},
		Logger: slog.New(slog.DiscardHandler),
		OIDC: &console.OIDC{Issuer: idp.Issuer(), ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, ConsoleURL: srv.URL,
			ProviderName: "Carrier SSO", Roles: roles, Scopes: []string{"profile", "groups"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = c
	b.console = srv.URL

	idp.QueueUser(&mockoidc.MockUser{Subject: "u-1001", PreferredUsername: "olga", Groups: []string{"staff", "kooflow-operators"}})
	if status := b.open("/"); status != http.StatusOK || b.text("h1") != "Sign in" {
		t.Fatalf("signed out, the console shows %d %q", status, b.text("h1"))
	}
	if status := b.click(linkTo("Sign in with Carrier SSO")); status != http.StatusOK {
		t.Fatalf("the sign-in through the provider answered %d: %s", status, b.text("body"))
	}
	if h, who := b.text("h1"), b.text("header .who span"); h != "Overview" || !strings.Contains(who, "olga · operator") {
		t.Fatalf("after the provider the console shows %q for %q, want the overview for olga · operator", h, who)
	}
	if status := b.click(buttonSaying("Sign out")); status != http.StatusOK || b.text("h1") != "Sign in" {
		t.Fatalf("sign out answered %d", status)
	}

	idp.QueueUser(&mockoidc.MockUser{Subject: "u-2002", PreferredUsername: "mallory", Groups: []string{"staff"}})
	status := b.click(linkTo("Sign in with Carrier SSO"))
	if page := b.text("main"); status != http.StatusForbidden || !strings.Contains(page, "has no kooflow role") {
		t.Fatalf("someone without a kooflow group got %d: %q", status, page)
	}
}
