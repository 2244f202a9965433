package wiring

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/httpserver"
	"github.com/kooflow/kooflow/starter"
)

// Console is the `kooflow console` process: the operators' console over the store,
// acting through a lazy Temporal client, with sign-in through the carrier's identity
// provider.
const Console Role = "console"

// DefaultConsoleAddr is where `kooflow console` listens unless KOOFLOW_CONSOLE_ADDR says
// otherwise: loopback, for a TLS reverse proxy in front.
const DefaultConsoleAddr = "127.0.0.1:8280"

// The variables `kooflow console` reads (besides KOOFLOW_DB, TEMPORAL_* and the payload
// keys).
const (
	EnvConsoleAddr           = "KOOFLOW_CONSOLE_ADDR"
	EnvConsoleURL            = "KOOFLOW_CONSOLE_URL"
	EnvConsoleSessionKey     = "KOOFLOW_CONSOLE_SESSION_KEY"
	EnvConsoleSessionKeyFile = "KOOFLOW_CONSOLE_SESSION_KEY_FILE"
	EnvOIDCIssuer            = "KOOFLOW_CONSOLE_OIDC_ISSUER"
	EnvOIDCClientID          = "KOOFLOW_CONSOLE_OIDC_CLIENT_ID"
	EnvOIDCClientSecret      = "KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET"
	EnvOIDCClientSecretFile  = "KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE"
	EnvOIDCRoleClaim         = "KOOFLOW_CONSOLE_OIDC_ROLE_CLAIM"
	EnvOIDCRoles             = "KOOFLOW_CONSOLE_OIDC_ROLES"
	EnvOIDCNameClaim         = "KOOFLOW_CONSOLE_OIDC_NAME_CLAIM"
	EnvOIDCScopes            = "KOOFLOW_CONSOLE_OIDC_SCOPES"
	EnvOIDCProviderName      = "KOOFLOW_CONSOLE_OIDC_PROVIDER_NAME"
	EnvTemporalUIURL         = "KOOFLOW_TEMPORAL_UI_URL"
)

// consoleTemporalProbe bounds the check, before an action, that Temporal answers: an
// operator waits at most this long to learn that it does not.
const consoleTemporalProbe = 5 * time.Second

// ConsoleConfig is what `kooflow console` adds to Config.
type ConsoleConfig struct {
	// Addr is the listen address; URL the console's public URL (the OIDC redirect is
	// URL + console.OIDCCallbackPath).
	Addr string
	URL  string
	// SessionKey signs the sessions (at least 32 bytes); never logged.
	SessionKey []byte
	// OIDC is the sign-in through the carrier's identity provider; its ConsoleURL is URL.
	OIDC console.OIDC
	// TemporalUIURL links an expiration to its workflow in the Temporal UI; empty: no link.
	TemporalUIURL string
}

// String describes the configuration without its secrets.
func (c ConsoleConfig) String() string {
	return fmt.Sprintf("console{addr %s, url %s, session key redacted, %s, Temporal UI %s}", c.Addr, c.URL, c.OIDC, c.TemporalUIURL)
}

// Secure reports whether the console's cookies are marked Secure: whenever its public
// URL is https (consoleFromEnv allows http only on loopback).
func (c ConsoleConfig) Secure() bool { return strings.HasPrefix(c.URL, "https://") }

// consoleFromEnv reads the console's settings; the errors name every missing or
// malformed variable, never a secret's value.
func consoleFromEnv(vars envMap) (ConsoleConfig, []error) {
	cc := ConsoleConfig{Addr: vars.or(EnvConsoleAddr, DefaultConsoleAddr), URL: strings.TrimRight(strings.TrimSpace(vars.get(EnvConsoleURL)), "/")}
	var problems []error
	if cc.URL == "" {
		problems = append(problems, fmt.Errorf("%s is not set: give the console's public URL, e.g. https://kooflow.carrier.example (the identity provider sends operators back to it + %s)",
			EnvConsoleURL, console.OIDCCallbackPath))
	} else if err := checkConsoleURL(cc.URL); err != nil {
		problems = append(problems, err)
	}

	key, err := secretFromEnv(vars, EnvConsoleSessionKey, EnvConsoleSessionKeyFile)
	switch {
	case err != nil:
		problems = append(problems, err)
	case key == "":
		problems = append(problems, fmt.Errorf("%s or %s is not set: the console signs its sessions with it (at least 32 random bytes, e.g. `openssl rand -base64 48`)",
			EnvConsoleSessionKey, EnvConsoleSessionKeyFile))
	case len(key) < 32:
		problems = append(problems, fmt.Errorf("the console session key (%s) is %d bytes; at least 32 are needed (e.g. `openssl rand -base64 48`)",
			setOne(vars, EnvConsoleSessionKey, EnvConsoleSessionKeyFile), len(key)))
	default:
		cc.SessionKey = []byte(key)
	}

	issuer, clientID, rolesSpec := strings.TrimSpace(vars.get(EnvOIDCIssuer)), strings.TrimSpace(vars.get(EnvOIDCClientID)), vars.get(EnvOIDCRoles)
	secret, secretErr := secretFromEnv(vars, EnvOIDCClientSecret, EnvOIDCClientSecretFile)
	if issuer == "" && clientID == "" && secret == "" && secretErr == nil && strings.TrimSpace(rolesSpec) == "" {
		problems = append(problems, fmt.Errorf("the console signs operators in only through the carrier's identity provider (OpenID Connect) and none is configured: "+
			"set %s, %s, %s (or %s) and %s — there is no password and no other way in",
			EnvOIDCIssuer, EnvOIDCClientID, EnvOIDCClientSecret, EnvOIDCClientSecretFile, EnvOIDCRoles))
		return cc, problems
	}
	var missing []string
	if issuer == "" {
		missing = append(missing, EnvOIDCIssuer)
	} else if u, err := url.Parse(issuer); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname()))) || u.Host == "" {
		problems = append(problems, fmt.Errorf("%s=%q is not an https URL (http only on loopback): give the provider's issuer, as its /.well-known/openid-configuration names it", EnvOIDCIssuer, issuer))
	}
	if clientID == "" {
		missing = append(missing, EnvOIDCClientID)
	}
	switch {
	case secretErr != nil:
		problems = append(problems, secretErr)
	case secret == "":
		missing = append(missing, EnvOIDCClientSecret+" or "+EnvOIDCClientSecretFile)
	case secret == "change-me":
		problems = append(problems, fmt.Errorf("%s holds the placeholder of .env.example; give the client secret the identity provider issued", setOne(vars, EnvOIDCClientSecret, EnvOIDCClientSecretFile)))
	}
	var roles map[console.Role][]string
	if strings.TrimSpace(rolesSpec) == "" {
		missing = append(missing, EnvOIDCRoles+" (e.g. viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins)")
	} else if roles, err = console.ParseRoles(rolesSpec); err != nil {
		problems = append(problems, fmt.Errorf("%s: %w", EnvOIDCRoles, err))
	}
	if len(missing) > 0 {
		problems = append([]error{fmt.Errorf("missing required environment variable(s) for the console's sign-in: %s", strings.Join(missing, ", "))}, problems...)
	}
	cc.OIDC = console.OIDC{Issuer: issuer, ClientID: clientID, ClientSecret: secret, ConsoleURL: cc.URL,
		ProviderName: strings.TrimSpace(vars.get(EnvOIDCProviderName)), NameClaim: strings.TrimSpace(vars.get(EnvOIDCNameClaim)),
		RoleClaim: strings.TrimSpace(vars.get(EnvOIDCRoleClaim)), Roles: roles}
	if s := vars.get(EnvOIDCScopes); strings.TrimSpace(s) != "" {
		cc.OIDC.Scopes = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	}
	if ui := strings.TrimSpace(vars.get(EnvTemporalUIURL)); ui != "" {
		if u, err := url.Parse(ui); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, fmt.Errorf("%s=%q is not an http(s) URL", EnvTemporalUIURL, ui))
		}
		cc.TemporalUIURL = ui
	}
	return cc, problems
}

// checkConsoleURL accepts an https URL at the root of its host, or http on loopback
// (cookies are not marked Secure there, so nowhere else).
func checkConsoleURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%s=%q is not an http(s) URL such as https://kooflow.carrier.example", EnvConsoleURL, s)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return fmt.Errorf("%s=%q: the console's sessions must not cross the network in clear; serve it over https (a TLS reverse proxy), or use http only on 127.0.0.1 or localhost", EnvConsoleURL, s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s=%q: the console is served at the root of its host; give the URL without a path", EnvConsoleURL, s)
	}
	return nil
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// setOne names whichever of the inline and file variables is set.
func setOne(vars envMap, inline, file string) string {
	if vars.get(file) != "" {
		return file + " " + vars.get(file)
	}
	return inline
}

// secretFromEnv returns the secret in the variable inline or in the file the variable
// file names (surrounding white space trimmed), "" when neither is set. The file must be
// readable by its owner only. Errors name the variables and the path, never the secret.
func secretFromEnv(vars envMap, inline, file string) (string, error) {
	value, path := strings.TrimSpace(vars.get(inline)), strings.TrimSpace(vars.get(file))
	switch {
	case value != "" && path != "":
		return "", fmt.Errorf("both %s and %s are set; set one", inline, file)
	case path == "":
		return value, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s %s: permissions %04o let other users read it; chmod 600 it (owned by the user kooflow runs as)", file, path, fi.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, 64<<10+1)); err != nil {
		return "", fmt.Errorf("%s: read %s: %w", file, path, err)
	}
	if buf.Len() > 64<<10 {
		return "", fmt.Errorf("%s: the file %s holds more than 64 KiB, more than a secret", file, path)
	}
	secret := strings.TrimSpace(buf.String())
	if secret == "" {
		return "", fmt.Errorf("%s: the file %s is empty", file, path)
	}
	if strings.ContainsAny(secret, "\r\n") {
		return "", fmt.Errorf("%s: the file %s holds more than one line; it must hold the secret alone", file, path)
	}
	return secret, nil
}

// StartConsoleProcess runs the operators' console on Config.Console.Addr (its pages and
// /healthz, 200 while the process runs) over the store, with sign-in through the carrier's
// identity provider. It needs neither Temporal nor the provider to start: its Temporal
// client is lazy, and an action checks within 5 s that Temporal answers and otherwise
// fails saying so; the provider is discovered in the background (logged) and again at
// sign-in when it did not answer.
func StartConsoleProcess(ctx context.Context, cfg Config) (_ *Process, err error) {
	p, err := openProcess(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.stopOnError(&err)
	if err := p.lazyClient(); err != nil {
		return nil, err
	}
	logger, cc := p.Parts.logger, cfg.Console
	oidcCfg := cc.OIDC
	oidcCfg.ConsoleURL = cc.URL
	address, namespace := p.Parts.ClientOptions.HostPort, p.Parts.ClientOptions.Namespace
	dial := func(ctx context.Context) (client.Client, error) {
		probe, cancel := context.WithTimeout(ctx, consoleTemporalProbe)
		defer cancel()
		if err := ProbeTemporal(probe, p.Client, namespace); err != nil {
			return nil, fmt.Errorf("Temporal at %s (namespace %s) does not answer, so nothing was done; try again once it is back (the console still shows kooflow's records): %w",
				address, namespace, err)
		}
		return p.Client, nil
	}
	c, err := console.New(console.Config{
		Store: p.Parts.Store, SessionKey: cc.SessionKey, Secure: cc.Secure(), TemporalUIURL: cc.TemporalUIURL,
		Namespace: namespace, Logger: logger, OIDC: &oidcCfg,
		Operator: func(actor starter.Actor) console.Operator {
			return &starter.Operator{Store: p.Parts.Store, Actor: actor, Dial: dial}
		},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	mux.Handle("/", c)
	srv, err := httpserver.Start("console", cc.Addr, mux, logger)
	if err != nil {
		return nil, err
	}
	p.ConsoleURL = srv.URL
	p.stops = append(p.stops, srv.Shutdown)
	logger.Info("console listening", "url", srv.URL, "publicURL", cc.URL, "secureCookies", cc.Secure(),
		"issuer", oidcCfg.Issuer, "clientId", oidcCfg.ClientID, "redirectURI", oidcCfg.RedirectURL(),
		"roleClaim", cmp.Or(oidcCfg.RoleClaim, console.DefaultRoleClaim), "roles", console.FormatRoles(oidcCfg.Roles),
		"temporal", address, "namespace", namespace, "store", p.Parts.Store.Dialect())

	discover, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.DiscoverOIDC(discover); err != nil {
			if discover.Err() == nil {
				logger.Warn("the identity provider does not answer yet; sign-in tries again when an operator signs in", "issuer", oidcCfg.Issuer, "error", err)
			}
			return
		}
		logger.Info("identity provider reached", "issuer", oidcCfg.Issuer)
	}()
	p.stops = append(p.stops, func() {
		stop()
		<-done
	})
	return p, nil
}
