// Tests NETLINK_ROUTE and the interface ioctls as programs use them: getifaddrs (glibc's
// RTM_GETLINK/RTM_GETADDR dumps), if_nametoindex, SIOCGIFFLAGS/SIOCGIFMTU/SIOCGIFADDR on lo,
// and a raw RTM_GETADDR dump ending in NLMSG_DONE.
#include "st.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int main(void) {
    st_init();
    struct ifaddrs *ifs;
    expect_err("getifaddrs", getifaddrs(&ifs), 0);
    int lo4 = 0, lo6 = 0, lo_flags = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (strcmp(i->ifa_name, "lo") != 0 || !i->ifa_addr) continue;
        lo_flags = i->ifa_flags;
        char t[64];
        if (i->ifa_addr->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, t, sizeof t);
            char m[64];
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, m, sizeof m);
            say("lo inet %s mask %s", t, m);
            lo4++;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, t, sizeof t);
            say("lo inet6 %s", t);
            lo6++;
        }
    }
    freeifaddrs(ifs);
    expect_eq("lo_inet", lo4, 1);
    expect_eq("lo_inet6", lo6, 1);
    expect("lo_up_loopback", (lo_flags & (IFF_UP | IFF_LOOPBACK)) == (IFF_UP | IFF_LOOPBACK));
    expect_eq("lo_index", if_nametoindex("lo"), 1);
    expect_eq("no_such_if", if_nametoindex("nosuch0"), 0);

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, "lo");
    expect_err("siocgifflags", ioctl(s, SIOCGIFFLAGS, &r), 0);
    expect("ifflags_up", (r.ifr_flags & IFF_UP) != 0);
    expect_err("siocgifmtu", ioctl(s, SIOCGIFMTU, &r), 0);
    say("lo mtu %d", r.ifr_mtu);
    expect_err("siocgifaddr", ioctl(s, SIOCGIFADDR, &r), 0);
    say("lo addr %s", inet_ntoa(((struct sockaddr_in *)&r.ifr_addr)->sin_addr));
    strcpy(r.ifr_name, "nosuch0");
    expect_err("siocgifflags_missing", ioctl(s, SIOCGIFFLAGS, &r), ENODEV);

    int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    expect("netlink_socket", nl >= 0);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    expect_err("netlink_bind", bind(nl, (void *)&sa, sizeof sa), 0);
    struct {
        struct nlmsghdr h;
        struct ifaddrmsg m;
    } req = {.h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETADDR,
                   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 42},
             .m = {.ifa_family = AF_INET}};
    expect_eq("netlink_send", send(nl, &req, sizeof req, 0), sizeof req);
    static char buf[65536];
    int done = 0, lo_seen = 0, seq_ok = 1;
    while (!done) {
        ssize_t n = recv(nl, buf, sizeof buf, 0);
        if (n <= 0) break;
        for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != 42) seq_ok = 0;
            if (h->nlmsg_type == NLMSG_DONE) {
                done = 1;
                break;
            }
            if (h->nlmsg_type != RTM_NEWADDR) continue;
            struct ifaddrmsg *m = NLMSG_DATA(h);
            if (m->ifa_index == 1 && m->ifa_family == AF_INET) lo_seen = m->ifa_prefixlen;
        }
    }
    expect_eq("dump_done", done, 1);
    expect_eq("dump_seq", seq_ok, 1);
    expect_eq("dump_lo_prefix", lo_seen, 8);
    return st_done();
}
