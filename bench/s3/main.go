// Command s3 is the helper of bench/s3.sh: it runs a SeaweedFS server (interp/storage/s3test)
// on 127.0.0.1 until stopped, for timing publishes to S3.
//
//	go run ./bench/s3 serve DIR ENVFILE   start it with data in DIR, write its AWS_* variables to ENVFILE
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/upds/upds/interp/storage/s3test"
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: s3 serve DIR ENVFILE")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(os.Args[2], 0o755); err != nil {
		log.Fatal(err)
	}
	srv, err := s3test.StartServer(ctx, os.Args[2], log.Printf)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	env := "export " + strings.Join(srv.Env(), " ") + "\nexport S3_URL=" + srv.URL("") + "\n"
	if err := os.WriteFile(os.Args[3], []byte(env), 0o644); err != nil {
		log.Fatal(err)
	}
	<-ctx.Done()
}
