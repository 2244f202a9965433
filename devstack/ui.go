package devstack

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiopts "github.com/temporalio/ui-server/v2/server/server_options"
)

type uiServer struct{ srv *uiserver.Server }

// UICodec points the embedded Temporal UI at a remote codec server (kooflow
// codec-server, or payloadcodec.NewHandler served by kooflow dev), which the UI's
// browser code calls directly: POST <Endpoint>/decode?preserveStorageRefs=true (and
// /encode for the signal and start forms) with the headers Content-Type:
// application/json and X-Namespace. The codec server must therefore answer CORS for the
// UI's origin (Stack.UIURL). The zero value leaves the UI without a codec: encrypted
// payloads are shown as they are stored.
type UICodec struct {
	// Endpoint is the codec server's base URL, e.g. http://127.0.0.1:8089 (no trailing
	// /decode). Empty: no codec.
	Endpoint string
	// IncludeCredentials makes the UI fetch with credentials: "include", so the browser
	// sends the codec server's cookies — how the kooflow codec server's /login session
	// authorises the dev UI, which has no sign-in of its own.
	IncludeCredentials bool
	// PassAccessToken makes the UI send "Authorization: Bearer <its OIDC access token>"
	// (and Authorization-Extras with the ID token). The UI does so only for an https
	// Endpoint and only when it has a sign-in (ui-server auth); for an http Endpoint it
	// shows a codec error and decodes nothing, so startUI refuses that combination.
	PassAccessToken bool
	// DefaultErrorMessage is what the UI shows when the codec server cannot be reached
	// or refuses (e.g. "Sign in at <Endpoint>/login to see decoded payloads").
	DefaultErrorMessage string
	// DefaultErrorLink is the link the UI shows with that message.
	DefaultErrorLink string
}

// config returns the UI server's codec settings, refusing what the UI cannot use.
func (c UICodec) config() (uiconfig.Codec, error) {
	if c.Endpoint == "" {
		if c.IncludeCredentials || c.PassAccessToken {
			return uiconfig.Codec{}, fmt.Errorf("Temporal UI codec: credentials options set without an endpoint")
		}
		return uiconfig.Codec{}, nil
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return uiconfig.Codec{}, fmt.Errorf("Temporal UI codec endpoint %q: want http(s)://host[:port][/path]", c.Endpoint)
	}
	if c.PassAccessToken && u.Scheme != "https" {
		return uiconfig.Codec{}, fmt.Errorf("Temporal UI codec endpoint %s: the UI passes its access token only to https endpoints", c.Endpoint)
	}
	return uiconfig.Codec{
		Endpoint:            strings.TrimRight(c.Endpoint, "/"),
		PassAccessToken:     c.PassAccessToken,
		IncludeCredentials:  c.IncludeCredentials,
		DefaultErrorMessage: c.DefaultErrorMessage,
		DefaultErrorLink:    c.DefaultErrorLink,
	}, nil
}

// uiConfigProvider hands the UI server its fixed configuration.
type uiConfigProvider struct{ cfg *uiconfig.Config }

func (p uiConfigProvider) GetConfig() (*uiconfig.Config, error) { return p.cfg, nil }

// startUI serves the Temporal UI for the frontend at temporalAddr and waits until it answers.
func startUI(host string, port int, temporalAddr, namespace string, codec UICodec, writeActions bool) (*uiServer, error) {
	codecCfg, err := codec.config()
	if err != nil {
		return nil, err
	}
	// The UI server exits the process if it cannot listen, so check the port first.
	if err := checkPortFree(host, port, "Temporal UI (--ui-port)"); err != nil {
		return nil, err
	}
	srv := uiserver.NewServer(uiopts.WithConfigProvider(uiConfigProvider{cfg: &uiconfig.Config{
		TemporalGRPCAddress: temporalAddr,
		Host:                host,
		Port:                port,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		HideLogs:            true,
		DisableNewsFetch:    true,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		Codec:               codecCfg,
		DisableWriteActions: !writeActions,
	}}))
	go func() { _ = srv.Start() }()
	url := "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/healthz"
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &uiServer{srv: srv}, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Stop()
	return nil, fmt.Errorf("Temporal UI did not answer on %s", url)
}

func (u *uiServer) stop() { u.srv.Stop() }
