package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

// S3 is a Store under a prefix of an S3 bucket, through the official AWS SDK. PutObject is
// atomic by itself (a reader sees the old object or the new); Lock is a lease object
// written with conditional requests (If-None-Match, If-Match).
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or "dir/" (with a trailing slash)
	endpoint string // the custom endpoint, or "" for AWS
	region   string
	// Lease is how long a Lock stays held without renewal; the holder renews it every
	// third of that. Default DefaultLease.
	Lease time.Duration
}

// DefaultLease is the default S3.Lease.
const DefaultLease = 30 * time.Second

// putParallel bounds the requests one Put or Delete has in flight.
const putParallel = 16

// IsS3 reports whether a storage location is an S3 URL (s3://BUCKET[/PREFIX]).
func IsS3(location string) bool { return strings.HasPrefix(location, "s3://") }

// ParseS3 splits s3://BUCKET[/PREFIX] into the bucket and the prefix (no slashes around it).
func ParseS3(location string) (bucket, prefix string, err error) {
	u, err := url.Parse(location)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%q is not an S3 location: expected s3://BUCKET/PREFIX", location)
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" && (prefix == "." || !fs.ValidPath(prefix)) {
		return "", "", fmt.Errorf("%q: bad prefix %q (no empty, . or .. elements)", location, prefix)
	}
	return u.Host, prefix, nil
}

// Open returns the store at location: s3://BUCKET/PREFIX (see NewS3) or a directory.
func Open(ctx context.Context, location string) (Store, error) {
	if IsS3(location) {
		return NewS3(ctx, location)
	}
	if strings.Contains(location, "://") {
		return nil, fmt.Errorf("storage %q: expected a directory or s3://BUCKET/PREFIX", location)
	}
	if location == "" {
		return nil, errors.New("storage: no location")
	}
	return NewDir(location), nil
}

// NewS3 returns the store at s3://BUCKET/PREFIX. Endpoint, region and credentials come from
// the standard AWS configuration: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION,
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile of ~/.aws/config). With a
// custom endpoint (an S3-compatible server) requests use path-style addressing
// (ENDPOINT/BUCKET/KEY) and the region defaults to us-east-1.
func NewS3(ctx context.Context, location string) (*S3, error) {
	bucket, prefix, err := ParseS3(location)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: AWS configuration: %w", location, err)
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	if endpoint == "" && cfg.BaseEndpoint != nil {
		endpoint = *cfg.BaseEndpoint
	}
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: endpoint %q is not an http(s) URL", location, endpoint)
		}
		endpoint = strings.TrimSuffix(endpoint, "/")
	}
	if cfg.Region == "" {
		if endpoint == "" {
			return nil, fmt.Errorf("%s: no AWS region: set AWS_REGION (or AWS_ENDPOINT_URL_S3 for an S3-compatible server)", location)
		}
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
	})
	s := &S3{client: client, bucket: bucket, endpoint: endpoint, region: cfg.Region, Lease: DefaultLease}
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	return s, nil
}

func (s *S3) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// HTTPURL is where an HTTP client that reads the bucket anonymously (apt, curl) finds the
// store's objects: ENDPOINT/BUCKET/PREFIX for a custom endpoint, else the bucket's
// virtual-hosted AWS address.
func (s *S3) HTTPURL() string {
	p := strings.TrimSuffix(s.prefix, "/")
	if s.endpoint != "" {
		return strings.TrimSuffix(s.endpoint+"/"+s.bucket+"/"+p, "/")
	}
	return strings.TrimSuffix("https://"+s.bucket+".s3."+s.region+".amazonaws.com/"+p, "/")
}

func (s *S3) key(name string) string { return s.prefix + name }

func (s *S3) where(name string) string { return "s3://" + s.bucket + "/" + s.key(name) }

// Put uploads the objects, up to putParallel at a time.
func (s *S3) Put(ctx context.Context, objs ...Object) error {
	for _, o := range objs {
		if err := checkName(o.Name); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(putParallel)
	for i := range objs {
		g.Go(func() error {
			o := &objs[i]
			etag, err := s.put(gctx, *o)
			if err != nil {
				return err
			}
			o.Stamp = etag
			if o.File != "" && o.Move {
				return os.Remove(o.File)
			}
			return nil
		})
	}
	return g.Wait()
}

// put uploads one object and returns its ETag.
func (s *S3) put(ctx context.Context, o Object) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	in := &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(o.Name))}
	if o.File != "" {
		f, err := os.Open(o.File)
		if err != nil {
			return "", err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return "", err
		}
		in.Body, in.ContentLength = f, aws.Int64(fi.Size())
	} else {
		in.Body, in.ContentLength = bytes.NewReader(o.Data), aws.Int64(int64(len(o.Data)))
	}
	if o.CacheControl != "" {
		in.CacheControl = aws.String(o.CacheControl)
	}
	if o.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if o.IfMatch != "" {
		in.IfMatch = aws.String(o.IfMatch)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", s.where(o.Name), mapErr(err))
	}
	return aws.ToString(out.ETag), nil
}

// Open starts a GET of the object.
func (s *S3) Open(ctx context.Context, name string) (io.ReadCloser, Info, error) {
	if err := checkName(name); err != nil {
		return nil, Info{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))})
	if err != nil {
		return nil, Info{}, fmt.Errorf("get %s: %w", s.where(name), mapErr(err))
	}
	return out.Body, Info{Name: name, Size: aws.ToInt64(out.ContentLength), Stamp: aws.ToString(out.ETag)}, nil
}

// Stat is a HEAD of the object.
func (s *S3) Stat(ctx context.Context, name string) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))})
	if err != nil {
		return Info{}, fmt.Errorf("head %s: %w", s.where(name), mapErr(err))
	}
	return Info{Name: name, Size: aws.ToInt64(out.ContentLength), Stamp: aws.ToString(out.ETag)}, nil
}

// List pages through ListObjectsV2 (1,000 keys a request).
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.key(prefix)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", s.where(prefix), mapErr(err))
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if name == "" || strings.HasSuffix(name, "/") || strings.HasPrefix(path.Base(name), ".") {
				continue
			}
			if err := fn(Info{Name: name, Size: aws.ToInt64(o.Size), Stamp: aws.ToString(o.ETag)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete deletes with DeleteObjects, 1,000 keys a request.
func (s *S3) Delete(ctx context.Context, names ...string) error {
	for _, n := range names {
		if err := checkName(n); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for len(names) > 0 {
		batch := names[:min(len(names), 1000)]
		names = names[len(batch):]
		g.Go(func() error { return s.deleteBatch(gctx, batch) })
	}
	return g.Wait()
}

func (s *S3) deleteBatch(ctx context.Context, names []string) error {
	ids := make([]types.ObjectIdentifier, len(names))
	for i, n := range names {
		ids[i] = types.ObjectIdentifier{Key: aws.String(s.key(n))}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("delete from %s: %w", s, mapErr(err))
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		return fmt.Errorf("delete s3://%s/%s: %s: %s", s.bucket, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
	}
	return nil
}

// mapErr turns "not found" answers into ErrNotExist and failed conditions into
// ErrPrecondition, keeping the SDK's error in the chain.
func mapErr(err error) error {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return &kindError{ErrNotExist, "no such object", err}
		case http.StatusPreconditionFailed, http.StatusConflict:
			return &kindError{ErrPrecondition, "precondition failed: the object exists or changed", err}
		}
	}
	return err
}

// kindError is an SDK error with a short message and a sentinel to match.
type kindError struct {
	kind error
	msg  string
	err  error
}

func (e *kindError) Error() string   { return e.msg }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }
