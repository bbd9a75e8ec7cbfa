package chaos

// sysSetns is setns(2)'s number; package syscall does not name it.
const sysSetns = 308
