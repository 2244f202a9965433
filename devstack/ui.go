package devstack

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiopts "github.com/temporalio/ui-server/v2/server/server_options"
)

type uiServer struct{ srv *uiserver.Server }

// uiConfigProvider hands the UI server its fixed configuration.
type uiConfigProvider struct{ cfg *uiconfig.Config }

func (p uiConfigProvider) GetConfig() (*uiconfig.Config, error) { return p.cfg, nil }

// startUI serves the Temporal UI for the frontend at temporalAddr and waits until it answers.
func startUI(host string, port int, temporalAddr, namespace string) (*uiServer, error) {
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
