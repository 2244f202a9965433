// Package httpserver starts kooflow's HTTP listeners with the same hardened settings
// everywhere, listening before it returns so that a busy port is reported at once.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server is a listening HTTP server.
type Server struct {
	// Name says what the server is, for messages.
	Name string
	// URL is the base URL clients use, with 127.0.0.1 for a wildcard address.
	URL string
	srv *http.Server
}

// Start listens on addr (":0" picks a free port) and serves h in the background.
func Start(name, addr string, h http.Handler, logger *slog.Logger) (*Server, error) {
	b, err := Bind(name, addr)
	if err != nil {
		return nil, err
	}
	return b.Serve(h, logger), nil
}

// Bound is a listener whose server is not serving yet: for a server whose handler needs
// to know another part's address, which needs to know this one's.
type Bound struct {
	// Name says what the server is, for messages.
	Name string
	// URL is the base URL clients will use.
	URL string
	l   net.Listener
}

// Bind listens on addr (":0" picks a free port) without serving yet: call Serve, or
// Close to give the port back.
func Bind(name, addr string) (*Bound, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	return &Bound{Name: name, URL: urlFor(l.Addr()), l: l}, nil
}

// Serve serves h on the bound listener in the background.
func (b *Bound) Serve(h http.Handler, logger *slog.Logger) *Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := srv.Serve(b.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server stopped", "server", b.Name, "error", err)
		}
	}()
	return &Server{Name: b.Name, URL: b.URL, srv: srv}
}

// Close gives the port back without serving.
func (b *Bound) Close() { _ = b.l.Close() }

func urlFor(addr net.Addr) string {
	tcp := addr.(*net.TCPAddr)
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// Shutdown stops accepting requests and waits up to 10 s for those in flight.
func (s *Server) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
