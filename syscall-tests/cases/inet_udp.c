// Tests AF_INET/AF_INET6 UDP on loopback: datagram boundaries, MSG_TRUNC, MSG_PEEK, recvfrom's
// sender, connect filtering and AF_UNSPEC disconnect, EDESTADDRREQ, sendmsg/recvmsg with iovecs,
// sendmmsg/recvmmsg, FIONREAD, IPv6 and v4-mapped addresses.
#include "st.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static int udp_bound(struct sockaddr_in *out) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (void *)&a, sizeof a);
    socklen_t l = sizeof *out;
    getsockname(s, (void *)out, &l);
    return s;
}

int main(void) {
    st_init();
    struct sockaddr_in ra, sa;
    int r = udp_bound(&ra);
    int s = udp_bound(&sa);
    expect_eq("sendto1", sendto(s, "first", 5, 0, (void *)&ra, sizeof ra), 5);
    expect_eq("sendto2", sendto(s, "second!", 7, 0, (void *)&ra, sizeof ra), 7);
    expect_eq("sendto_empty", sendto(s, "", 0, 0, (void *)&ra, sizeof ra), 0);
    char buf[64] = {0};
    int n = -1;
    usleep(20000);
    ioctl(r, FIONREAD, &n);
    expect_eq("fionread_next_datagram", n, 5);
    expect_eq("peek", recv(r, buf, sizeof buf, MSG_PEEK), 5);
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    expect_eq("recvfrom", recvfrom(r, buf, sizeof buf, 0, (void *)&from, &fl), 5);
    expect("from_is_sender", from.sin_port == sa.sin_port && fl == sizeof from);
    say("d1: %.5s", buf);
    /* Truncation: the rest of the datagram is lost; MSG_TRUNC returns the real length. */
    expect_eq("recv_trunc_flag", recv(r, buf, 3, MSG_TRUNC), 7);
    expect_eq("recv_empty_datagram", recv(r, buf, sizeof buf, 0), 0);
    expect_err("dontwait_empty", recv(r, buf, 1, MSG_DONTWAIT), EAGAIN);

    /* recvmsg reports MSG_TRUNC in msg_flags. */
    sendto(s, "abcdefgh", 8, 0, (void *)&ra, sizeof ra);
    char p1[3], p2[2];
    struct iovec iov[2] = {{p1, 3}, {p2, 2}};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = iov, .msg_iovlen = 2};
    expect_eq("recvmsg_scatter", recvmsg(r, &mh, 0), 5);
    expect("recvmsg_trunc", (mh.msg_flags & MSG_TRUNC) != 0);
    say("scatter: %.3s|%.2s", p1, p2);

    /* sendmsg gathers. */
    struct iovec g[2] = {{"gat", 3}, {"her", 3}};
    struct msghdr sm = {.msg_name = &ra, .msg_namelen = sizeof ra, .msg_iov = g, .msg_iovlen = 2};
    expect_eq("sendmsg_gather", sendmsg(s, &sm, 0), 6);
    memset(buf, 0, sizeof buf);
    expect_eq("recv_gathered", recv(r, buf, sizeof buf, 0), 6);
    say("gathered: %s", buf);

    /* Unconnected send needs a destination; connect sets one and filters. */
    expect_err("send_no_dest", send(s, "x", 1, 0), EDESTADDRREQ);
    expect_err("connect", connect(s, (void *)&ra, sizeof ra), 0);
    expect_eq("send_connected", send(s, "conn", 4, 0), 4);
    expect_eq("recv_connected", recv(r, buf, sizeof buf, 0), 4);
    struct sockaddr_in pa;
    socklen_t pl = sizeof pa;
    expect_err("getpeername", getpeername(s, (void *)&pa, &pl), 0);
    expect("peer_port", pa.sin_port == ra.sin_port);
    struct sockaddr un = {.sa_family = AF_UNSPEC};
    expect_err("disconnect", connect(s, &un, sizeof un), 0);
    expect_err("getpeername_after_disconnect", getpeername(s, (void *)&pa, &pl), ENOTCONN);

    /* sendmmsg / recvmmsg. */
    struct mmsghdr mm[3];
    struct iovec mi[3] = {{"one", 3}, {"two", 3}, {"three", 5}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &mi[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_name = &ra;
        mm[i].msg_hdr.msg_namelen = sizeof ra;
    }
    expect_eq("sendmmsg", sendmmsg(s, mm, 3, 0), 3);
    expect_eq("sendmmsg_len", mm[2].msg_len, 5);
    char rb[3][16];
    struct iovec ri[3] = {{rb[0], 16}, {rb[1], 16}, {rb[2], 16}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &ri[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    usleep(20000);
    expect_eq("recvmmsg", recvmmsg(r, mm, 3, MSG_DONTWAIT, 0), 3);
    say("mm: %.3s %.3s %.5s (%u)", rb[0], rb[1], rb[2], mm[2].msg_len);

    /* IPv6, and an IPv4 peer seen by an AF_INET6 socket as v4-mapped. */
    int r6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    expect_err("bind6", bind(r6, (void *)&a6, sizeof a6), 0);
    socklen_t l6 = sizeof a6;
    getsockname(r6, (void *)&a6, &l6);
    expect_eq("sockname6_len", l6, sizeof a6);
    int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
    expect_eq("sendto6", sendto(s6, "v6", 2, 0, (void *)&a6, sizeof a6), 2);
    struct sockaddr_in6 f6;
    socklen_t f6l = sizeof f6;
    expect_eq("recvfrom6", recvfrom(r6, buf, sizeof buf, 0, (void *)&f6, &f6l), 2);
    char txt[64];
    inet_ntop(AF_INET6, &f6.sin6_addr, txt, sizeof txt);
    say("from6: %s", txt);
    int any6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 w6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    bind(any6, (void *)&w6, sizeof w6);
    l6 = sizeof w6;
    getsockname(any6, (void *)&w6, &l6);
    struct sockaddr_in to4 = {.sin_family = AF_INET, .sin_port = w6.sin6_port};
    to4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    expect_eq("sendto_v4_to_dual", sendto(s, "map", 3, 0, (void *)&to4, sizeof to4), 3);
    f6l = sizeof f6;
    expect_eq("recv_mapped", recvfrom(any6, buf, sizeof buf, 0, (void *)&f6, &f6l), 3);
    inet_ntop(AF_INET6, &f6.sin6_addr, txt, sizeof txt);
    say("mapped: %s", txt);
    return st_done();
}
