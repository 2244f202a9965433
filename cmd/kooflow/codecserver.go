package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/httpserver"
	"github.com/kooflow/kooflow/payloadcodec"
)

func newCodecServerCommand() *cobra.Command {
	var listen, dataDir string
	var origins []string
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Serve Temporal's remote codec protocol so authorised UI and CLI users see decrypted payloads",
		Long: `codec-server decrypts kooflow's encrypted Temporal payloads for the Temporal UI (its
codec endpoint setting) and the temporal CLI (--codec-endpoint), and encrypts what they send.

Every /encode and /decode request must carry "Authorization: Bearer <token>" or the session
cookie a browser gets by signing in at /login with the token; anything else is refused
with 401 and nothing is decoded. CORS is answered only for the --ui-origin origins; set
the UI's codec "include credentials" option so the browser sends the cookie.

Environment:
  KOOFLOW_PAYLOAD_KEYS or KOOFLOW_PAYLOAD_KEYS_FILE   the payload keys (as for the worker)
  KOOFLOW_CODEC_TOKEN or KOOFLOW_CODEC_TOKEN_FILE     the token (at least 32 characters)
  KOOFLOW_CODEC_ADDR                                  listen address (--listen)
  KOOFLOW_CODEC_UI_ORIGINS                            comma-separated UI origins (--ui-origin)

With --data-dir, the payload-keys and codec-token files kept there by kooflow dev are
used for whichever of the two the environment does not give.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			getenv := os.Getenv
			if dataDir != "" {
				getenv = devFilesEnv(dataDir)
			}
			codec, err := payloadcodec.FromEnv(getenv)
			if err != nil {
				return fmt.Errorf("codec server: %w", err)
			}
			if codec == nil {
				return errors.New("codec server: payload encryption is off, so there is nothing to decode; give it the workers' KOOFLOW_PAYLOAD_KEYS")
			}
			token, err := payloadcodec.TokenFromEnv(getenv)
			if err != nil {
				return fmt.Errorf("codec server: %w", err)
			}
			if v := os.Getenv("KOOFLOW_CODEC_UI_ORIGINS"); v != "" && !cmd.Flags().Changed("ui-origin") {
				origins = strings.Split(v, ",")
			}
			if v := os.Getenv("KOOFLOW_CODEC_ADDR"); v != "" && !cmd.Flags().Changed("listen") {
				listen = v
			}
			logger := slog.Default()
			h, err := payloadcodec.NewHandler(payloadcodec.HandlerOptions{Codec: codec, Token: token, AllowedOrigins: origins, Logger: logger})
			if err != nil {
				return fmt.Errorf("codec server: %w", err)
			}
			srv, err := httpserver.Start("codec server", listen, h, logger)
			if err != nil {
				return err
			}
			defer srv.Shutdown()
			ids := codec.Keyring().KeyIDs()
			logger.Info("codec server started", "url", srv.URL, "encryption_key", ids[0], "keys", strings.Join(ids, ","),
				"ui_origins", strings.Join(origins, ","))
			fmt.Fprintf(cmd.OutOrStdout(), "kooflow codec server on %s (encrypts with key %s; decrypts %s; sign in at %s/login)\n",
				srv.URL, ids[0], strings.Join(ids, ", "), srv.URL)
			<-cmd.Context().Done()
			logger.Info("codec server stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8089", "address to listen on (env KOOFLOW_CODEC_ADDR)")
	cmd.Flags().StringSliceVar(&origins, "ui-origin", []string{"http://127.0.0.1:8233"},
		"Temporal UI origin allowed to call from a browser, scheme://host:port; repeatable (env KOOFLOW_CODEC_UI_ORIGINS)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "use the payload-keys and codec-token files of this kooflow dev data directory when the environment gives none")
	return cmd
}

// devFilesEnv is os.Getenv that falls back to dataDir's payload-keys and codec-token
// files for the key and token variables when none of each pair is set.
func devFilesEnv(dataDir string) func(string) string {
	keysGiven := os.Getenv(payloadcodec.EnvKeys) != "" || os.Getenv(payloadcodec.EnvKeysFile) != ""
	tokenGiven := os.Getenv(payloadcodec.EnvCodecToken) != "" || os.Getenv(payloadcodec.EnvCodecTokenFile) != ""
	return func(name string) string {
		switch {
		case name == payloadcodec.EnvKeysFile && !keysGiven:
			return filepath.Join(dataDir, payloadcodec.DevKeyFile)
		case name == payloadcodec.EnvCodecTokenFile && !tokenGiven:
			return filepath.Join(dataDir, payloadcodec.DevTokenFile)
		}
		return os.Getenv(name)
	}
}
