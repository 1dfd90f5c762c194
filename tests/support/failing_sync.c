/* A dying disk at the system-call boundary, for a daemon under test:
 * preloaded (LD_PRELOAD), fsync and fdatasync fail with EIO once the file
 * TOCSIN_FAIL_SYNC_TRIGGER names exists, and work as usual before. The
 * daemon's store then sees its write-ahead log's sync fail exactly as on a
 * disk that stopped working, with nothing of it mocked.
 *
 * The calls it stands in for go straight to the kernel (syscall), so that it
 * needs no dlsym and works under any allocator or sanitizer runtime. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failing(void) {
  const char* trigger = getenv("TOCSIN_FAIL_SYNC_TRIGGER");
  return trigger && *trigger && access(trigger, F_OK) == 0;
}

int fsync(int fd) {
  if (failing()) {
    errno = EIO;
    return -1;
  }
  return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd) {
  if (failing()) {
    errno = EIO;
    return -1;
  }
  return (int)syscall(SYS_fdatasync, fd);
}
