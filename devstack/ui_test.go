package devstack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestUICodecSettings starts the embedded UI server with a codec endpoint and reads the
// settings its browser code loads (/api/v1/settings), which is where the UI takes the
// codec endpoint and credentials mode from.
func TestUICodecSettings(t *testing.T) {
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ui, err := startUI("127.0.0.1", port, "127.0.0.1:1", "default", UICodec{
		Endpoint: "http://127.0.0.1:8089/", IncludeCredentials: true,
		DefaultErrorMessage: "Sign in at http://127.0.0.1:8089/login to see decoded payloads",
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ui.stop)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/settings", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var settings struct {
		Codec struct {
			Endpoint            string
			PassAccessToken     bool
			IncludeCredentials  bool
			DefaultErrorMessage string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&settings); err != nil {
		t.Fatal(err)
	}
	c := settings.Codec
	if c.Endpoint != "http://127.0.0.1:8089" || !c.IncludeCredentials || c.PassAccessToken || !strings.Contains(c.DefaultErrorMessage, "/login") {
		t.Errorf("UI codec settings: %+v", c)
	}
}

// TestUIWriteActionsAreOffByDefault: the embedded UI's settings (what its pages read)
// say write actions are off unless they were turned on. (The UI server then also refuses
// every non-GET API call but queries.)
func TestUIWriteActionsAreOffByDefault(t *testing.T) {
	for _, on := range []bool{false, true} {
		port, err := freePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ui, err := startUI("127.0.0.1", port, "127.0.0.1:1", "default", UICodec{}, on)
		if err != nil {
			t.Fatal(err)
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		resp, err := http.Get(base + "/api/v1/settings")
		if err != nil {
			t.Fatal(err)
		}
		var settings struct{ DisableWriteActions bool }
		err = json.NewDecoder(resp.Body).Decode(&settings)
		resp.Body.Close()
		if err != nil || settings.DisableWriteActions == on {
			t.Errorf("write actions %v: settings say DisableWriteActions=%v (%v)", on, settings.DisableWriteActions, err)
		}
		ui.stop()
	}
}

func TestUICodecRefusesWhatTheUICannotUse(t *testing.T) {
	for _, c := range []UICodec{
		{Endpoint: "http://127.0.0.1:8089", PassAccessToken: true},
		{Endpoint: "127.0.0.1:8089"},
		{Endpoint: "http://127.0.0.1:8089/?x=1"},
		{IncludeCredentials: true},
	} {
		if _, err := c.config(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if cfg, err := (UICodec{}).config(); err != nil || cfg.Endpoint != "" {
		t.Errorf("zero value: %+v, %v", cfg, err)
	}
	if cfg, err := (UICodec{Endpoint: "https://codec.example/kooflow", PassAccessToken: true}).config(); err != nil || !cfg.PassAccessToken {
		t.Errorf("https with access token: %+v, %v", cfg, err)
	}
}
