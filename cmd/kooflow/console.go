package main

import (
	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/console"
	"github.com/kooflow/kooflow/wiring"
)

func newConsoleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "console",
		Short: "Run the operators' web console, signed in through the carrier's identity provider (OpenID Connect)",
		Long: `Runs the operators' console as its own process: the pages over kooflow's store (what needs
an operator, expirations by any identifier, deliveries, the audit log) and the actions, which go
through the same audited door as the CLI.

Operators sign in only through the carrier's identity provider (OpenID Connect, authorization
code with PKCE). Their name in the audit log comes from a claim of the ID token, their role
(viewer reads, operator also acts, admin also steers the schedule and the registry) from
another claim whose values KOOFLOW_CONSOLE_OIDC_ROLES maps; an account whose claim maps to no
role is refused. Without the OIDC settings the process does not start: there is no password
and no other way in. Register ` + "KOOFLOW_CONSOLE_URL" + console.OIDCCallbackPath + ` as the client's
redirect URI at the provider.

It starts and serves while Temporal is down (its client connects lazily): the pages read the
store, and an action then fails within seconds saying Temporal does not answer. /healthz on
its listener answers 200 while the process runs.

Environment:
  KOOFLOW_DB                          kooflow's store (required): sqlite:PATH or postgres://…
  TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*
                                      the Temporal connection (the SDK's standard configuration)
  KOOFLOW_PAYLOAD_KEYS or _FILE       the payload keys the worker and the webhook use (required;
                                      or KOOFLOW_PAYLOAD_ENCRYPTION=off)
  KOOFLOW_CONSOLE_ADDR                listen address (default ` + wiring.DefaultConsoleAddr + `, loopback:
                                      put a TLS reverse proxy in front, or :8280 in a container)
  KOOFLOW_CONSOLE_URL                 the console's public URL (required), e.g.
                                      https://kooflow.carrier.example; http only on 127.0.0.1 or
                                      localhost. Cookies are Secure unless it is http.
  KOOFLOW_CONSOLE_SESSION_KEY or _FILE
                                      signs the sessions (required, at least 32 bytes, e.g.
                                      ` + "`openssl rand -base64 48`" + `; a file readable by its owner
                                      only); a new key signs everyone out
  KOOFLOW_CONSOLE_OIDC_ISSUER         the provider's issuer URL (required), as its
                                      /.well-known/openid-configuration names it
  KOOFLOW_CONSOLE_OIDC_CLIENT_ID      the console's client ID at the provider (required)
  KOOFLOW_CONSOLE_OIDC_CLIENT_SECRET or _FILE
                                      its client secret (required)
  KOOFLOW_CONSOLE_OIDC_ROLES          which claim values grant which role (required), e.g.
                                      viewer=kooflow-viewers,operator=kooflow-operators,admin=kooflow-admins
                                      (repeat a role for several values; the highest wins)
  KOOFLOW_CONSOLE_OIDC_ROLE_CLAIM     the claim holding them (default ` + console.DefaultRoleClaim + `; a string or a
                                      list; a dotted path such as realm_access.roles reaches in)
  KOOFLOW_CONSOLE_OIDC_NAME_CLAIM     the claim naming the operator in the audit log (default
                                      preferred_username, else email, else sub)
  KOOFLOW_CONSOLE_OIDC_SCOPES         scopes asked for besides openid (default profile,email;
                                      add groups where the provider needs it)
  KOOFLOW_CONSOLE_OIDC_PROVIDER_NAME  the name on the sign-in button (default the issuer's host)
  KOOFLOW_TEMPORAL_UI_URL             the Temporal UI, for the links from an expiration (optional)

Secrets are never logged, and appear in no error message.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProcess(cmd.Context(), wiring.Console)
		},
	}
}
