//go:build linux

// Package scale_test measures the built manager (cmd/manager, run as its
// own process) against a real API server with many TokenRequests sharing
// a few credentials: time to Ready against two floors of a plain client
// (a create and an update per object; the operator's own writes per
// TokenRequest), token-service calls, memory, API writes per refresh
// window and the cost of a restart. `make bench` prints the table; SCALE_SIZES chooses the
// sizes (default 50), SCALE_TOKEN_LIFETIME the tokens' lifetime,
// SCALE_TOKEN_BYTES the access tokens' length (default 51; Entra's are about 1,500),
// SCALE_UNRELATED how many unrelated Secrets are added at the end (default
// 10,000), SCALE_MANAGER_FLAGS extra manager flags and SCALE_PROFILE a
// folder for CPU and heap profiles of the manager.
package scale_test

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// The API server's test harness logs through controller-runtime; the
// benchmark prints its own figures.
func init() { ctrllog.SetLogger(logr.Discard()) }

// unrelatedSecrets is how many Secrets no TokenRequest uses the benchmark
// adds at the end of each run unless SCALE_UNRELATED says otherwise.
const unrelatedSecrets = 10_000

// smallPeakRSS is a loose ceiling on the manager's peak memory at
// TestScaleSmall's size (it peaks at about 46 MiB, of which about 32 MiB
// is the binary): a regression that about triples the process's own
// memory fails.
const smallPeakRSS = 80 << 20

// TestScaleSmall runs the harness at a small size and checks behaviour
// and a loose memory ceiling: every TokenRequest gets Ready (the harness
// fails otherwise), one token call per credential, a restart reconciles
// each TokenRequest and costs no call and no write, a refresh window
// rewrites every Secret exactly once, and no manager process peaks above
// smallPeakRSS. Timings are not checked.
func TestScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an API server and the manager")
	}
	r := run(t, config{n: 30, lifetime: 40 * time.Second, tokenSize: defaultTokenSize, unrelated: 100, logf: t.Logf})
	if r.creationCalls != credentials {
		t.Errorf("%d token calls for %d TokenRequests over %d credentials; want %d", r.creationCalls, r.n, credentials, credentials)
	}
	if r.restartCalls != 0 || r.restartSecretWrites != 0 {
		t.Errorf("the restart made %d token calls and %d Secret writes; want none", r.restartCalls, r.restartSecretWrites)
	}
	if r.waveRewritten != r.n {
		t.Errorf("the refresh wave gave %d of %d Secrets a new token", r.waveRewritten, r.n)
	}
	if r.peakRSS > smallPeakRSS {
		t.Errorf("the manager peaked at %s (per process %s); want at most %s", mib(r.peakRSS), mibs(r.processPeaks), mib(smallPeakRSS))
	}
	if r.waveMaxPerSecret > 1 {
		t.Errorf("a Secret was written %d times in one refresh window; want 1", r.waveMaxPerSecret)
	}
	if r.waveCalls != credentials {
		t.Errorf("%d token calls in the refresh window; want %d", r.waveCalls, credentials)
	}
	if r.refusedCalls != 0 {
		t.Errorf("the token service refused %d calls", r.refusedCalls)
	}
	var b strings.Builder
	b.WriteString(table([]*result{r}))
	details(&b, r)
	t.Log("\n" + b.String())
}

// BenchmarkScale prints the scale table for each size in SCALE_SIZES
// (comma-separated; default 50).
func BenchmarkScale(b *testing.B) {
	sizes, err := envSizes()
	if err != nil {
		b.Fatal(err)
	}
	var results []*result
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			cfg := config{n: n, lifetime: lifetimeFor(n), tokenSize: defaultTokenSize, unrelated: unrelatedSecrets, profileDir: os.Getenv("SCALE_PROFILE"), logf: func(format string, args ...any) {
				fmt.Printf(time.Now().UTC().Format(time.TimeOnly)+" "+format+"\n", args...)
			}}
			cfg.managerFlags = strings.Fields(os.Getenv("SCALE_MANAGER_FLAGS"))
			if v := os.Getenv("SCALE_UNRELATED"); v != "" {
				if cfg.unrelated, err = strconv.Atoi(v); err != nil || cfg.unrelated < 0 {
					b.Fatalf("SCALE_UNRELATED: %q is not a count", v)
				}
			}
			if v := os.Getenv("SCALE_TOKEN_LIFETIME"); v != "" {
				if cfg.lifetime, err = time.ParseDuration(v); err != nil {
					b.Fatal(err)
				}
			}
			if v := os.Getenv("SCALE_TOKEN_BYTES"); v != "" {
				if cfg.tokenSize, err = strconv.Atoi(v); err != nil || cfg.tokenSize < 4 {
					b.Fatalf("SCALE_TOKEN_BYTES: %q is not a length of at least 4", v)
				}
			}
			if cfg.profileDir != "" {
				if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
					b.Fatal(err)
				}
			}
			// One run whatever b.N: a run takes minutes.
			r := run(b, cfg)
			if r.waveRewritten != r.n {
				b.Errorf("the refresh wave gave %d of %d Secrets a new token", r.waveRewritten, r.n)
			}
			b.ReportMetric(r.ready.Seconds(), "s-to-ready")
			b.ReportMetric(r.ready.Seconds()/r.floor.Seconds(), "ratio-to-floor")
			b.ReportMetric(r.ready.Seconds()/r.operatorFloor.Seconds(), "ratio-to-operator-floor")
			b.ReportMetric(float64(r.peakRSS)/(1<<20), "peak-RSS-MiB")
			results = append(results, r)
		})
	}
	if len(results) > 0 {
		fmt.Println()
		fmt.Print(table(results))
		for _, r := range results {
			details(os.Stdout, r)
		}
	}
}

// envSizes reads SCALE_SIZES.
func envSizes() ([]int, error) {
	v := os.Getenv("SCALE_SIZES")
	if v == "" {
		return []int{50}, nil
	}
	var sizes []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < credentials {
			return nil, fmt.Errorf("SCALE_SIZES: %q is not a number of at least %d", s, credentials)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// lifetimeFor is a token lifetime whose refresh wave (at about two thirds
// of it) comes after the creation and restart phases at size n.
func lifetimeFor(n int) time.Duration {
	return 120*time.Second + time.Duration(n)*60*time.Millisecond
}

// table renders the results as a markdown table, one column per size.
func table(rs []*result) string {
	var b strings.Builder
	row := func(name string, f func(r *result) string) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, r := range rs {
			fmt.Fprintf(&b, " %s |", f(r))
		}
		b.WriteString("\n")
	}
	row("TokenRequests (10 credentials)", func(r *result) string { return strconv.Itoa(r.n) })
	b.WriteString("| --- |" + strings.Repeat(" ---: |", len(rs)) + "\n")
	row("write floor (8 writers, create + update)", func(r *result) string { return seconds(r.floor) })
	row("every Secret holds a token", func(r *result) string { return seconds(r.tokensIn) })
	row("time to Ready (every TokenRequest Ready=True at its generation)", func(r *result) string { return seconds(r.ready) })
	row("ratio to the write floor", func(r *result) string { return fmt.Sprintf("%.2f", r.ready.Seconds()/r.floor.Seconds()) })
	row("operator floor (8 writers: TokenRequest create, Secret create, status update)", func(r *result) string { return seconds(r.operatorFloor) })
	row("ratio to the operator floor", func(r *result) string {
		return fmt.Sprintf("%.2f", r.ready.Seconds()/r.operatorFloor.Seconds())
	})
	row("token-service calls", func(r *result) string { return strconv.Itoa(r.creationCalls) })
	row("API requests per TokenRequest at creation", func(r *result) string {
		return fmt.Sprintf("%.2f", total(r.roundTrips)/float64(r.n))
	})
	row("manager peak RSS (highest VmHWM of every manager process)", func(r *result) string { return mib(r.peakRSS) })
	row("manager RSS after creation settled (VmRSS)", func(r *result) string { return mib(r.settledRSS) })
	row("of which the process's own memory (RssAnon; the rest is the binary)", func(r *result) string { return mib(r.settledAnon) })
	row("Go heap in use after creation settled", func(r *result) string { return mib(r.goHeap) })
	row("refresh window: token calls", func(r *result) string { return strconv.Itoa(r.waveCalls) })
	row("refresh window: Secret writes per TokenRequest", func(r *result) string {
		return fmt.Sprintf("%.2f (max %d)", float64(r.waveSecretWrites)/float64(r.n), r.waveMaxPerSecret)
	})
	row("refresh window: TokenRequest writes per TokenRequest", func(r *result) string {
		return fmt.Sprintf("%.2f", float64(r.waveTRWrites)/float64(r.n))
	})
	row("refresh wave: duration", func(r *result) string { return seconds(r.waveDuration) })
	row("refresh wave: peak token calls/s", func(r *result) string { return strconv.Itoa(r.peakCallsPerSec) })
	row("refresh wave: peak Secret writes/s", func(r *result) string { return strconv.Itoa(r.peakWritesPerSec) })
	row("restart: token calls", func(r *result) string { return strconv.Itoa(r.restartCalls) })
	row("restart: Secret writes", func(r *result) string { return strconv.Itoa(r.restartSecretWrites) })
	row("restart: process start to every TokenRequest reconciled (distinct)", func(r *result) string { return seconds(r.restartReconciled) })
	row("Go heap after GC growth from unrelated Secrets of 1 KiB", func(r *result) string {
		if r.unrelated == 0 {
			return "not run"
		}
		return fmt.Sprintf("%+.1f MiB for %d", float64(r.heapAfter-r.heapBefore)/(1<<20), r.unrelated)
	})
	return b.String()
}

// details prints what does not fit the table.
func details(w io.Writer, r *result) {
	fmt.Fprintf(w, "\nN=%d (token lifetime %s):\n", r.n, r.lifetime)
	fmt.Fprintf(w, "  creation: Secret writes per TokenRequest %.2f, TokenRequest writes per TokenRequest %.2f\n",
		float64(r.creationSecretWrites)/float64(r.n), float64(r.creationTRWrites)/float64(r.n))
	fmt.Fprintf(w, "  creation: manager API requests per TokenRequest by method %s\n", perObject(r.roundTrips, r.n))
	fmt.Fprintf(w, "  creation: manager API requests per TokenRequest by code %s\n", perObject(r.codes, r.n))
	fmt.Fprintf(w, "  restart: TokenRequest writes %d, API requests per TokenRequest by method %s, distinct TokenRequests reconciled %d (reconciles counted %.0f)\n",
		r.restartTRWrites, perObject(r.restartRoundTrips, r.n), r.restartDistinct, r.restartReconciles)
	fmt.Fprintf(w, "  refresh window: API requests per TokenRequest by method %s, %d Secrets got a new token\n",
		perObject(r.waveRoundTrips, r.n), r.waveRewritten)
	fmt.Fprintf(w, "  refresh window: API requests per TokenRequest by code %s\n", perObject(r.waveCodes, r.n))
	fmt.Fprintf(w, "  manager peak RSS by process (VmHWM, in start order): %s\n", mibs(r.processPeaks))
	if r.unrelated > 0 {
		fmt.Fprintf(w, "  unrelated Secrets: %d, seen by the manager %s after the first create; Go heap after GC %s before, %s after\n",
			r.unrelated, seconds(r.unrelatedSeen), mib1(r.heapBefore), mib1(r.heapAfter))
	}
	fmt.Fprintf(w, "  manager log lines about client-side throttling: %d; token calls refused: %d\n", r.throttleLines, r.refusedCalls)
}

func total(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func mib1(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func mibs(bs []int64) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, mib(b))
	}
	return strings.Join(parts, ", ")
}
