package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/keyserver/keyserver/keyserver"
)

// adminFlags are the serve flags of the admin API (spec 10.1): off unless
// --admin-listen is given.
type adminFlags struct {
	listen    string
	tokenFile string
}

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "admin-listen", "", "address of the admin API, e.g. 127.0.0.1:9001 (port 0 picks a free one); the admin API is off when empty. Never expose it publicly")
	fs.StringVar(&f.tokenFile, "admin-token-file", "", "file holding the admin API's bearer token (at least 32 characters; surrounding whitespace is ignored); required with --admin-listen")
}

// adminAPI is the running admin listener; a nil *adminAPI is "off" and its
// methods do nothing.
type adminAPI struct {
	ln  net.Listener
	srv *http.Server
}

// open reads the token and listens, or returns nil when the admin API is
// off.
func (f *adminFlags) open(srv *keyserver.Server, logger *slog.Logger) (*adminAPI, error) {
	if f.listen == "" {
		if f.tokenFile != "" {
			logger.Warn("--admin-token-file is set but --admin-listen is not: the admin API is off")
		}
		return nil, nil
	}
	if f.tokenFile == "" {
		return nil, fmt.Errorf("%w: --admin-listen needs --admin-token-file", errUsage)
	}
	raw, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the admin token file: %w", err)
	}
	h, err := srv.AdminHandler(bytes.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("--admin-token-file %s: %w", f.tokenFile, err)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	return &adminAPI{ln: ln, srv: newHTTPServer(h, logger)}, nil
}

// announce prints the admin API's bound address on the second stdout line
// (after the public one) and logs it.
func (a *adminAPI) announce(stdout io.Writer, logger *slog.Logger) {
	if a == nil {
		return
	}
	addr := a.ln.Addr().String()
	fmt.Fprintln(stdout, addr)
	logger.Info("admin API serving", "addr", addr)
}

// serve serves until shutdown, then sends the result to errc.
func (a *adminAPI) serve(errc chan<- error) {
	if a != nil {
		go func() { errc <- a.srv.Serve(a.ln) }()
	}
}

func (a *adminAPI) shutdown(ctx context.Context) error {
	if a == nil {
		return nil
	}
	return a.srv.Shutdown(ctx)
}
