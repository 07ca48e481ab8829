// Tests AF_UNIX credentials: SO_PEERCRED (socketpair, connect/accept both ways, unconnected, datagram connect), SO_PASSCRED with SCM_CREDENTIALS (implicit creds of the sender process, messages sent before it was set, stream reads split at a change of sender), explicit SCM_CREDENTIALS and their checks (EPERM for another pid or uid when unprivileged, EINVAL), MSG_CTRUNC, autobind of a SO_PASSCRED sender.
#include "st.h"
#include <sys/socket.h>
#include <sys/un.h>

static int peercred(int s, struct ucred *c) {
    socklen_t l = sizeof *c;
    return getsockopt(s, SOL_SOCKET, SO_PEERCRED, c, &l);
}

static void passcred(int s) {
    int one = 1;
    MUST(setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one));
}

static ssize_t send_creds(int s, const char *d, struct ucred *c) {
    struct iovec io = {(void *)d, strlen(d)};
    char ctl[CMSG_SPACE(sizeof *c)];
    memset(ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    if (c) {
        m.msg_control = ctl;
        m.msg_controllen = sizeof ctl;
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_CREDENTIALS;
        h->cmsg_len = CMSG_LEN(sizeof *c);
        memcpy(CMSG_DATA(h), c, sizeof *c);
    }
    return sendmsg(s, &m, 0);
}

/* Receives one message; returns its length, the creds in *c (has=0 when none came). */
static int recv_creds(int s, char *buf, size_t len, struct ucred *c, int *has, int *flags) {
    struct iovec io = {buf, len};
    char ctl[256];
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    int n = recvmsg(s, &m, 0);
    *has = 0;
    if (flags) *flags = m.msg_flags;
    if (n < 0) return n;
    buf[n] = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS) {
            memcpy(c, CMSG_DATA(h), sizeof *c);
            *has = 1;
        }
    return n;
}

static int is_me(struct ucred *c) {
    return c->pid == getpid() && c->uid == getuid() && c->gid == getgid();
}

int main(void) {
    st_init();
    st_mkdir("unix_creds");
    char b[64];
    struct ucred c;
    int has, fl;

    /* SO_PEERCRED */
    int sv[2];
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    expect_err("peercred_pair", peercred(sv[0], &c), 0);
    expect("peercred_pair_is_me", c.pid == getpid() && c.uid == geteuid() && c.gid == getegid());
    socklen_t l = 4;
    expect_err("peercred_short", getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &c, &l), 0);
    expect_eq("peercred_short_len", l, 4);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    peercred(u, &c);
    say("unconnected: pid=%d uid=%d gid=%d", c.pid, (int)c.uid, (int)c.gid);
    expect_err("set_peercred", setsockopt(u, SOL_SOCKET, SO_PEERCRED, &c, sizeof c), ENOPROTOOPT);
    close(u);

    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", st_path("srv"));
    int lsn = socket(AF_UNIX, SOCK_STREAM, 0);
    MUST(bind(lsn, (void *)&a, sizeof a));
    MUST(listen(lsn, 4));
    int go[2];
    MUST(pipe(go));
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(s, (void *)&a, sizeof a) < 0) _exit(1);
        struct ucred pc;
        peercred(s, &pc);
        /* The listener's creds: our parent. */
        if (pc.pid != getppid() || pc.uid != geteuid()) _exit(2);
        if (send(s, "hi", 2, 0) != 2) _exit(3);
        char x;
        read(go[0], &x, 1);
        _exit(0);
    }
    int acc = accept(lsn, NULL, NULL);
    peercred(acc, &c);
    expect("accepted_peercred_is_child", c.pid == k && c.uid == geteuid());
    /* Without SO_PASSCRED on either end nothing comes. */
    expect_eq("recv_plain", recv_creds(acc, b, sizeof b, &c, &has, NULL), 2);
    expect_eq("no_creds_without_passcred", has, 0);
    write(go[1], "x", 1);
    int st;
    waitpid(k, &st, 0);
    say("client: %s", st_status(st));
    close(acc);
    close(lsn);

    /* SO_PASSCRED */
    int v = -1;
    l = sizeof v;
    getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &v, &l);
    expect_eq("passcred_default", v, 0);
    send(sv[0], "S1", 2, 0);
    passcred(sv[1]);
    getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &v, &l);
    expect_eq("passcred_set", v, 1);
    send(sv[0], "S2", 2, 0);
    send(sv[0], "S3", 2, 0);
    int n = recv_creds(sv[1], b, sizeof b, &c, &has, NULL);
    say("sent_before_passcred: n=%d data=%s has=%d pid=%d uid=%d gid=%d", n, b, has, c.pid, (int)c.uid, (int)c.gid);
    n = recv_creds(sv[1], b, sizeof b, &c, &has, NULL);
    say("sent_after: n=%d data=%s has=%d is_me=%d", n, b, has, is_me(&c));
    /* A stream read stops where the sender changes. */
    send(sv[0], "P1", 2, 0);
    fflush(stdout);
    k = fork();
    if (k == 0) {
        send(sv[0], "C1", 2, 0);
        _exit(0);
    }
    waitpid(k, NULL, 0);
    n = recv_creds(sv[1], b, sizeof b, &c, &has, NULL);
    say("parent_part: data=%s is_me=%d", b, is_me(&c));
    n = recv_creds(sv[1], b, sizeof b, &c, &has, NULL);
    say("child_part: data=%s pid_is_child=%d", b, c.pid == k);
    /* No control buffer: MSG_CTRUNC. */
    send(sv[0], "S4", 2, 0);
    struct iovec io = {b, sizeof b};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    expect_eq("recv_no_control", recvmsg(sv[1], &m, 0), 2);
    expect_eq("ctrunc", m.msg_flags & MSG_CTRUNC, MSG_CTRUNC);

    /* Explicit SCM_CREDENTIALS */
    struct ucred mine = {getpid(), getuid(), getgid()};
    expect_eq("explicit_own", send_creds(sv[0], "E1", &mine), 2);
    n = recv_creds(sv[1], b, sizeof b, &c, &has, &fl);
    say("explicit_received: has=%d is_me=%d", has, is_me(&c));
    struct ucred badid = mine;
    badid.uid = (uid_t)-1;
    expect_err("explicit_uid_minus_1", send_creds(sv[0], "E2", &badid), EINVAL);
    fflush(stdout);
    k = fork();
    if (k == 0) {
        if (geteuid() == 0 && (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))) _exit(9);
        struct ucred other = {getppid(), getuid(), getgid()};
        if (send_creds(sv[0], "E3", &other) != -1 || errno != EPERM) _exit(1);
        struct ucred root = {getpid(), 0, getgid()};
        if (send_creds(sv[0], "E4", &root) != -1 || errno != EPERM) _exit(2);
        struct ucred self = {getpid(), getuid(), getgid()};
        if (send_creds(sv[0], "E5", &self) != 2) _exit(3);
        _exit(0);
    }
    waitpid(k, &st, 0);
    say("unprivileged_sender: %s", st_status(st));
    n = recv_creds(sv[1], b, sizeof b, &c, &has, NULL);
    uid_t child_uid = geteuid() == 0 ? 65534 : getuid();
    say("unprivileged_message: data=%s pid_is_child=%d uid_is_child=%d", b, c.pid == k, c.uid == child_uid);
    close(sv[0]);
    close(sv[1]);

    /* Datagrams: connect records no SO_PEERCRED; a SO_PASSCRED sender autobinds. */
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un da = {.sun_family = AF_UNIX};
    snprintf(da.sun_path, sizeof da.sun_path, "%s", st_path("dg"));
    MUST(bind(d, (void *)&da, sizeof da));
    int ds = socket(AF_UNIX, SOCK_DGRAM, 0);
    MUST(connect(ds, (void *)&da, sizeof da));
    peercred(ds, &c);
    say("dgram_connect_peercred: pid=%d uid=%d", c.pid, (int)c.uid);
    int dp = socket(AF_UNIX, SOCK_DGRAM, 0);
    passcred(dp);
    expect_eq("passcred_sendto", sendto(dp, "D", 1, 0, (void *)&da, sizeof da), 1);
    struct sockaddr_un me;
    l = sizeof me;
    getsockname(dp, (void *)&me, &l);
    say("autobound: len=%d abstract=%d", (int)l, me.sun_path[0] == 0);
    /* Creds ride along (the sender has SO_PASSCRED) but only a SO_PASSCRED receiver sees them. */
    n = recv_creds(d, b, sizeof b, &c, &has, NULL);
    say("receiver_without_passcred: n=%d has=%d", n, has);
    passcred(d);
    sendto(dp, "E", 1, 0, (void *)&da, sizeof da);
    n = recv_creds(d, b, sizeof b, &c, &has, NULL);
    say("receiver_with_passcred: n=%d has=%d is_me=%d", n, has, is_me(&c));
    close(d);
    close(ds);
    close(dp);
    return st_done();
}
