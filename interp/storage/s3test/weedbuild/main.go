// Command weedbuild builds the SeaweedFS server that the S3 tests run (s3test.Binary), so
// that CI pays for the cold build in .ci/install-deps rather than inside a test's time
// limit. It prints the binary's path.
//
//	go run ./interp/storage/s3test/weedbuild
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/upds/upds/interp/storage/s3test"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin, err := s3test.Binary(ctx, log.Printf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(bin)
}
