package dashboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome binary: $RMQ_CHROMIUM, then the
// Debian package's /usr/bin/chromium, then the usual names on PATH.
func chromium() string {
	if p := os.Getenv("RMQ_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium tab on the dashboard, with bounded
// steps and screenshots saved to dir.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string

	mu      sync.Mutex
	console []string // errors the page logged
}

// step runs actions with a bound: a step that cannot finish in 30s fails
// the test instead of hanging it.
func (b *browser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		lctx, lcancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer lcancel()
		toasts, _ := chromedp.Run(lctx, chromedp.Evaluate[[]string](`toastLog`))
		b.t.Fatalf("%s: %v\npage console: %v\ntoasts: %q", what, err, b.consoleErrors(), toasts)
	}
}

// wait polls a JavaScript predicate until it is true (at most 30s).
func (b *browser) wait(what, predicate string) {
	b.t.Helper()
	b.step(what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(30*time.Second),
		chromedp.WithPollingInterval(50*time.Millisecond)))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) open(hash, visible string) {
	b.t.Helper()
	b.step("open "+hash, chromedp.Navigate(b.base+hash), chromedp.WaitVisible(chromedp.CSS(visible)))
}

// confirm clicks OK in the page's confirm dialog.
func (b *browser) confirm() {
	b.t.Helper()
	b.step("confirm", chromedp.WaitVisible(chromedp.CSS("#confirm-ok")), chromedp.Click(chromedp.CSS("#confirm-ok")))
}

// shot saves a full-page PNG of the page scrolled to the top (the
// header is sticky), without the toasts over it.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); document.querySelector("#toasts").replaceChildren()`))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
	}
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// startBrowser starts headless Chromium, or skips the test without one.
func startBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromium()
	if path == "" {
		t.Skip("no Chromium: install the Debian package (apt-get install chromium) or set RMQ_CHROMIUM; .ci/run installs it")
	}
	dir := os.Getenv("RMQ_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, "dashboard")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // containers run tests as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.WindowSize(1440, 960),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	b := &browser{t: t, ctx: ctx, base: base, dir: dir}
	// The first Do starts the browser, bound to ctx's life.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		t.Fatalf("start %s: %v", path, err)
	}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() { // ends when the tab closes (cancel below)
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			// 4xx answers the page handles (a trace not recorded yet) are
			// logged by the browser as failed loads: not page errors.
			if m.IsException() || m.Type == "error" && !strings.HasPrefix(m.Text, "Failed to load resource") {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		acancel()
		<-done
	})
	return b
}
