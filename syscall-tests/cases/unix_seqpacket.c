// Tests AF_UNIX SOCK_SEQPACKET: records kept whole (truncation with MSG_TRUNC, empty records), listen/accept on a path, ENOTCONN before connecting, EOF and EPIPE (never SIGPIPE) after the peer closes, ECONNRESET first when it left records unread, shutdown.
#include "st.h"
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

static int sigpipes;
static void on_pipe(int s) { (void)s; sigpipes++; }

int main(void) {
    st_init();
    signal(SIGPIPE, on_pipe);
    st_mkdir("unix_seqpacket");
    char b[256];

    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    expect_err("send_unconnected", send(s, "x", 1, 0), ENOTCONN);
    expect_err("recv_unconnected", recv(s, b, 1, MSG_DONTWAIT), ENOTCONN);
    expect_err("listen_unbound", listen(s, 1), EINVAL);

    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", st_path("sp"));
    socklen_t al = sizeof a;
    expect_err("bind", bind(s, (void *)&a, al), 0);
    expect_err("listen", listen(s, 4), 0);
    expect_err("recv_listener", recv(s, b, 1, MSG_DONTWAIT), ENOTCONN);
    expect_err("send_listener", send(s, "x", 1, 0), ENOTCONN);
    int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    int d = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("stream_to_seqpacket", connect(d, (void *)&a, al), EPROTOTYPE);
    close(d);
    expect_err("connect", connect(c, (void *)&a, al), 0);
    int sv = accept(s, NULL, NULL);
    expect("accept", sv >= 0);

    /* Records. */
    send(c, "one", 3, 0);
    send(c, "twotwo", 6, 0);
    send(c, "", 0, 0);
    send(c, "three", 5, MSG_EOR);
    int avail = -1;
    ioctl(sv, FIONREAD, &avail);
    expect_eq("fionread_all_records", avail, 14);
    expect_eq("rec1", recv(sv, b, sizeof b, 0), 3);
    struct iovec io = {b, 2};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    expect_eq("rec2_truncated", recvmsg(sv, &m, 0), 2);
    expect_eq("rec2_flags_trunc", m.msg_flags & MSG_TRUNC, MSG_TRUNC);
    expect_eq("rec3_empty", recv(sv, b, sizeof b, 0), 0);
    expect_eq("rec4_trunc_full_len", recv(sv, b, 1, MSG_TRUNC), 5);
    expect_err("no_more", recv(sv, b, sizeof b, MSG_DONTWAIT), EAGAIN);
    expect_eq("waitall_ignored", (send(c, "ab", 2, 0), recv(sv, b, 10, MSG_WAITALL)), 2);
    expect_eq("write_empty_record", send(sv, "", 0, 0), 0);
    expect_eq("read_empty_record", recv(c, b, sizeof b, MSG_DONTWAIT), 0);
    expect_err("then_eagain", recv(c, b, sizeof b, MSG_DONTWAIT), EAGAIN);
    expect_eq("sendto_ignores_address", sendto(c, "x", 1, 0, (void *)&a, al), 1);
    expect_eq("read_it", recv(sv, b, sizeof b, 0), 1);
    /* writev sends one record, readv reads one record across its iovecs; write(2) of
     * nothing is an empty record. */
    struct iovec wv[3] = {{"ab", 2}, {"cde", 3}, {"f", 1}};
    expect_eq("writev_one_record", writev(c, wv, 3), 6);
    send(c, "next", 4, 0);
    char r1[2], r2[10] = {0};
    struct iovec rv[2] = {{r1, 2}, {r2, sizeof r2 - 1}};
    expect_eq("readv_one_record", readv(sv, rv, 2), 6);
    say("readv_data: %.2s%s", r1, r2);
    expect_eq("next_record", recv(sv, b, sizeof b, 0), 4);
    expect_eq("write_nothing", write(c, "", 0), 0);
    expect_eq("empty_record_from_write", recv(sv, b, sizeof b, MSG_DONTWAIT), 0);
    expect_err("nothing_after_it", recv(sv, b, sizeof b, MSG_DONTWAIT), EAGAIN);

    /* shutdown(SHUT_WR): EPIPE without a signal; the peer reads EOF. */
    expect_err("shut_wr", shutdown(c, SHUT_WR), 0);
    expect_err("send_after_shut_wr", send(c, "x", 1, 0), EPIPE);
    expect_err("write_after_shut_wr", write(c, "x", 1), EPIPE);
    expect_eq("peer_eof", recv(sv, b, sizeof b, 0), 0);
    expect_eq("peer_eof_nonblocking", recv(sv, b, sizeof b, MSG_DONTWAIT), 0);
    expect_eq("reverse_open", send(sv, "rev", 3, 0), 3);
    expect_eq("read_reverse", recv(c, b, sizeof b, 0), 3);
    close(c);
    close(sv);

    /* A peer that closes: EOF; EPIPE on write, no SIGPIPE. */
    int p[2];
    MUST(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p));
    send(p[1], "bye", 3, 0);
    close(p[1]);
    expect_eq("queued_record", recv(p[0], b, sizeof b, 0), 3);
    expect_eq("eof", recv(p[0], b, sizeof b, 0), 0);
    expect_err("send_closed", send(p[0], "x", 1, 0), EPIPE);
    expect_err("write_closed", write(p[0], "x", 1), EPIPE);
    close(p[0]);

    /* A peer that closes with our records unread: ECONNRESET before anything else. */
    MUST(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p));
    send(p[0], "unread", 6, 0);
    send(p[1], "queued", 6, 0);
    close(p[1]);
    expect_err("reset_first", recv(p[0], b, sizeof b, 0), ECONNRESET);
    expect_eq("then_record", recv(p[0], b, sizeof b, 0), 6);
    expect_eq("then_eof", recv(p[0], b, sizeof b, 0), 0);
    close(p[0]);
    MUST(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p));
    send(p[0], "unread", 6, 0);
    close(p[1]);
    expect_err("send_reset_first", send(p[0], "x", 1, 0), ECONNRESET);
    expect_err("send_then_epipe", send(p[0], "x", 1, 0), EPIPE);
    close(p[0]);
    say("sigpipes: %d", sigpipes);

    /* A connection never accepted is reset when the listener closes. */
    int c2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    expect_err("connect_pending", connect(c2, (void *)&a, al), 0);
    close(s);
    expect_err("pending_reset", recv(c2, b, sizeof b, 0), ECONNRESET);
    expect_eq("pending_eof", recv(c2, b, sizeof b, 0), 0);
    close(c2);
    return st_done();
}
