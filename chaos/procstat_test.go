package chaos

import (
	"os"
	"testing"
)

func TestReadProc(t *testing.T) {
	comm, rss, fds, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if comm == "" || rss <= 0 || fds <= 0 {
		t.Errorf("ReadProc(self) = %q, %d KiB, %d fds; want a name and positive figures", comm, rss, fds)
	}
	if _, _, _, err := ReadProc(1 << 30); err == nil {
		t.Error("ReadProc of a pid that cannot exist: no error")
	}
}
