// Tests uname: sysname "Linux", machine "x86_64", release looks like a version, fields NUL-terminated; sethostname needs privilege semantics not checked.
#include "st.h"
#include <sys/utsname.h>

int main(void) {
    st_init();
    struct utsname u;
    memset(&u, 0x7f, sizeof u);
    expect_err("uname", uname(&u), 0);
    say("sysname: %s", u.sysname);
    say("machine: %s", u.machine);
    int maj = 0, min = 0;
    expect("release_is_version", sscanf(u.release, "%d.%d", &maj, &min) == 2 && maj >= 3);
    expect("nodename_terminated", memchr(u.nodename, 0, sizeof u.nodename) != NULL);
    expect("version_nonempty", u.version[0] != 0);
    expect("domainname_terminated", memchr(u.domainname, 0, sizeof u.domainname) != NULL);
    char host[256];
    expect_err("gethostname", gethostname(host, sizeof host), 0);
    expect("gethostname_matches_nodename", strcmp(host, u.nodename) == 0);
    /* /proc/sys/kernel agrees with uname */
    char buf[256] = {0};
    int fd = open("/proc/sys/kernel/ostype", O_RDONLY);
    if (fd >= 0) { read(fd, buf, sizeof buf - 1); close(fd); }
    say("proc_ostype: %s", strtok(buf, "\n") ? buf : "(missing)");
    memset(buf, 0, sizeof buf);
    fd = open("/proc/sys/kernel/osrelease", O_RDONLY);
    if (fd >= 0) { read(fd, buf, sizeof buf - 1); close(fd); }
    strtok(buf, "\n");
    expect("proc_osrelease_matches", strcmp(buf, u.release) == 0);
    memset(buf, 0, sizeof buf);
    fd = open("/proc/sys/kernel/hostname", O_RDONLY);
    if (fd >= 0) { read(fd, buf, sizeof buf - 1); close(fd); }
    strtok(buf, "\n");
    expect("proc_hostname_matches", strcmp(buf, u.nodename) == 0);
    /* /proc/version starts with "Linux version <release>" */
    memset(buf, 0, sizeof buf);
    fd = open("/proc/version", O_RDONLY);
    if (fd >= 0) { read(fd, buf, sizeof buf - 1); close(fd); }
    char want[128];
    snprintf(want, sizeof want, "Linux version %s", u.release);
    expect("proc_version_prefix", strncmp(buf, want, strlen(want)) == 0);
    expect_err("uname_efault", syscall(SYS_uname, (void *)8), EFAULT);
    return st_done();
}
