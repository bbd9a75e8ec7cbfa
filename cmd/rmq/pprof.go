package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/internal/flightrec"
)

// traceDirFlag is --trace-dir of rmq broker and rmq dev.
var traceDirFlag = &cli.StringFlag{Name: "trace-dir", Usage: "keep the last 10s of Go execution trace in memory and write it to a file " +
	"in this directory when a node starts an election or loses leadership, or the process stalls for 250ms " +
	"(read it with go tool trace FILE; costs a few percent of CPU; default: off)"}

// startFlightRecorder starts the process's flight recorder writing to dir
// (nil and no error when dir is ""). Close it before the process ends.
func startFlightRecorder(dir string, log hclog.Logger) (*flightrec.Recorder, error) {
	if dir == "" {
		return nil, nil
	}
	r, err := flightrec.Start(flightrec.Config{Dir: dir, Logger: log.Named("flightrec")})
	if err != nil {
		return nil, fmt.Errorf("--trace-dir: %w", err)
	}
	log.Info("flight recorder on: traces of elections, lost leadership and stalls go to the trace directory", "dir", dir)
	return r, nil
}

var pprofFlag = &cli.StringFlag{Name: "pprof", Usage: "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060"}

// startPprof serves /debug/pprof on addr until ctx ends ("" does nothing).
// The returned function waits for the server to stop.
func startPprof(ctx context.Context, addr string, log hclog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { // stopped by Shutdown below when ctx ends
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "error", err)
		}
	}()
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }() // ends with ctx
	log.Info("serving profiles", "addr", ln.Addr().String())
	return func() { <-done }, nil
}
