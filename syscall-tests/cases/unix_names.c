// Tests AF_UNIX names: bind to a path (socket node with the umask applied, EADDRINUSE, EINVAL when bound, ENOENT, bad addresses), getsockname/getpeername bytes and lengths, the path cut at its first NUL, abstract names (a namespace per socket type), autobind, connect through a symlink, EACCES without write permission, unlink and rebind.
#include "st.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static socklen_t mkaddr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static socklen_t mkabs(struct sockaddr_un *a, const char *name, size_t len) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path + 1, name, len);
    return offsetof(struct sockaddr_un, sun_path) + 1 + len;
}

/* getsockname (peer=0) or getpeername into a 0x55-filled buffer of `room` bytes: returns the
 * reported length; *same says whether the bytes are `want` (first min(len, room) of them)
 * and the rest of the buffer is untouched. */
static int name_of(int s, int peer, socklen_t room, const void *want, socklen_t wantlen, int *same) {
    unsigned char buf[200];
    memset(buf, 0x55, sizeof buf);
    socklen_t l = room;
    int r = peer ? getpeername(s, (void *)buf, &l) : getsockname(s, (void *)buf, &l);
    if (r < 0) return -errno;
    socklen_t n = l < room ? l : room;
    *same = l == wantlen && memcmp(buf, want, n) == 0;
    for (size_t i = n; i < sizeof buf; i++)
        if (buf[i] != 0x55) *same = 0;
    return (int)l;
}

int main(void) {
    st_init();
    umask(027);
    chmod(st_mkdir("unix_names"), 0755);
    struct sockaddr_un a, b2;
    int same;

    /* Unbound: the family alone. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    sa_family_t fam = AF_UNIX;
    expect_eq("unbound_len", name_of(s, 0, sizeof a, &fam, 2, &same), 2);
    expect("unbound_bytes", same);
    expect_eq("unbound_peername", name_of(s, 1, sizeof a, &fam, 2, &same), -ENOTCONN);

    /* Bind to a path: a socket node, mode 0777 & ~umask. */
    const char *p1 = st_path("s1");
    socklen_t l1 = mkaddr(&a, p1);
    expect_err("bind_full_sizeof", bind(s, (void *)&a, sizeof a), 0);
    struct stat stt;
    MUST(lstat(p1, &stt));
    say("node: sock=%d perm=%o", S_ISSOCK(stt.st_mode), stt.st_mode & 07777);
    expect("path_len_includes_nul", name_of(s, 0, sizeof a, &a, l1, &same) == (int)l1);
    expect("path_bytes", same);
    expect("short_buffer_reports_full_len", name_of(s, 0, 5, &a, l1, &same) == (int)l1);
    expect("short_buffer_bytes", same);
    expect_err("open_socket_node", open(p1, O_RDONLY), ENXIO);
    expect_err("bind_again_new_path", bind(s, (void *)&b2, mkaddr(&b2, st_path("s2"))), EINVAL);
    expect("no_node_left", access(st_path("s2"), F_OK) < 0 && errno == ENOENT);
    expect_err("bind_again_same_path", bind(s, (void *)&a, l1), EADDRINUSE);
    int s2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect_err("bind_taken_path", bind(s2, (void *)&a, l1), EADDRINUSE);
    expect_err("bind_missing_dir", bind(s2, (void *)&b2, mkaddr(&b2, st_path("none/x"))), ENOENT);
    expect_err("bind_trailing_slash", bind(s2, (void *)&b2, mkaddr(&b2, st_path("s3/"))), ENOENT);
    expect_err("bind_len_0", bind(s2, (void *)&b2, 0), EINVAL);
    expect_err("bind_len_1", bind(s2, (void *)&b2, 1), EINVAL);
    expect_err("bind_len_too_long", bind(s2, (void *)&b2, sizeof b2 + 1), EINVAL);
    mkaddr(&b2, st_path("s3"));
    b2.sun_family = AF_INET;
    expect_err("bind_wrong_family", bind(s2, (void *)&b2, sizeof b2), EINVAL);
    int reg = open(st_path("file"), O_CREAT | O_WRONLY, 0644);
    close(reg);
    expect_err("bind_over_file", bind(s2, (void *)&b2, mkaddr(&b2, st_path("file"))), EADDRINUSE);
    /* A path is cut at its first NUL. */
    socklen_t l4 = mkaddr(&b2, st_path("s4"));
    memcpy(b2.sun_path + strlen(b2.sun_path) + 1, "junk", 4);
    expect_err("bind_nul_inside", bind(s2, (void *)&b2, l4 + 4), 0);
    expect("cut_at_nul", access(st_path("s4"), F_OK) == 0);
    memset(b2.sun_path + strlen(b2.sun_path), 0, 5);
    expect("cut_name_len", name_of(s2, 0, sizeof b2, &b2, l4, &same) == (int)l4);
    expect("cut_name_bytes", same);
    close(s2);

    /* connect: peer names, errors. */
    MUST(listen(s, 4));
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("connect_missing", connect(c, (void *)&b2, mkaddr(&b2, st_path("nope"))), ENOENT);
    expect_err("connect_not_dir", connect(c, (void *)&b2, mkaddr(&b2, st_path("file/x"))), ENOTDIR);
    expect_err("connect_regular_file", connect(c, (void *)&b2, mkaddr(&b2, st_path("file"))), ECONNREFUSED);
    expect_err("connect_unbound_node", connect(c, (void *)&b2, mkaddr(&b2, st_path("s4"))), ECONNREFUSED);
    expect_err("connect_short", connect(c, (void *)&a, 2), EINVAL);
    MUST(symlink(p1, st_path("link")));
    expect_err("connect_via_symlink", connect(c, (void *)&b2, mkaddr(&b2, st_path("link"))), 0);
    expect("client_peername", name_of(c, 1, sizeof a, &a, l1, &same) == (int)l1);
    expect("client_peername_bytes", same);
    int acc = accept(s, NULL, NULL);
    expect("accepted_sockname_is_listener", name_of(acc, 0, sizeof a, &a, l1, &same) == (int)l1);
    expect("accepted_sockname_bytes", same);
    expect_eq("accepted_peername_unbound", name_of(acc, 1, sizeof a, &fam, 2, &same), 2);
    close(acc);
    close(c);

    /* Without write permission on the node: EACCES (for an unprivileged process). */
    chmod(p1, 0);
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        if (geteuid() == 0 && setresuid(65534, 65534, 65534)) _exit(9);
        int x = socket(AF_UNIX, SOCK_STREAM, 0);
        _exit(connect(x, (void *)&a, l1) < 0 && errno == EACCES ? 0 : 1);
    }
    int st;
    waitpid(k, &st, 0);
    say("eacces_child: %s", st_status(st));
    chmod(p1, 0755);

    /* Unlinked node: the name is gone for connect, the socket keeps its name. */
    unlink(p1);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("connect_unlinked", connect(c, (void *)&a, l1), ENOENT);
    expect("sockname_after_unlink", name_of(s, 0, sizeof a, &a, l1, &same) == (int)l1);
    int s5 = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("rebind_unlinked_path", bind(s5, (void *)&a, l1), 0);
    MUST(listen(s5, 1));
    expect_err("connect_reaches_new", connect(c, (void *)&a, l1), 0);
    close(c);
    close(s5);
    close(s);
    expect("node_stays_after_close", access(p1, F_OK) == 0);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("connect_closed", connect(c, (void *)&a, l1), ECONNREFUSED);
    close(c);

    /* Abstract names: the bytes as given; one namespace per socket type. */
    struct sockaddr_un ab;
    socklen_t abl = mkabs(&ab, "st-names\0x", 10);
    int x1 = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("bind_abstract", bind(x1, (void *)&ab, abl), 0);
    expect_eq("abstract_len", name_of(x1, 0, sizeof ab, &ab, abl, &same), abl);
    expect("abstract_bytes", same);
    int x2 = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("abstract_taken", bind(x2, (void *)&ab, abl), EADDRINUSE);
    expect_err("abstract_prefix_free", bind(x2, (void *)&ab, abl - 1), 0);
    int x3 = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect_err("abstract_same_name_other_type", bind(x3, (void *)&ab, abl), 0);
    MUST(listen(x1, 1));
    int x4 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    expect_err("abstract_other_type_refused", connect(x4, (void *)&ab, abl), ECONNREFUSED);
    int x5 = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("connect_abstract", connect(x5, (void *)&ab, abl), 0);
    close(x1);
    int x6 = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("abstract_free_after_close", bind(x6, (void *)&ab, abl), 0);
    struct sockaddr_un z;
    socklen_t zl = mkabs(&z, "", 0);
    int x7 = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("bind_empty_abstract", bind(x7, (void *)&z, zl), 0);
    expect_eq("empty_abstract_len", name_of(x7, 0, sizeof z, &z, zl, &same), 3);
    close(x2); close(x3); close(x4); close(x5); close(x6); close(x7);

    /* Autobind: bind with the family alone gives "\0" and five hex digits. */
    int y = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un fam_only = {.sun_family = AF_UNIX};
    expect_err("autobind", bind(y, (void *)&fam_only, sizeof(sa_family_t)), 0);
    struct sockaddr_un got;
    memset(&got, 0x55, sizeof got);
    socklen_t gl = sizeof got;
    MUST(getsockname(y, (void *)&got, &gl));
    int hex = 1;
    for (int i = 1; i < 6; i++) hex &= strchr("0123456789abcdef", got.sun_path[i]) != NULL && got.sun_path[i];
    say("autobind_name: len=%d nul=%d hex=%d", (int)gl, got.sun_path[0] == 0, hex);
    expect_err("autobind_again_ok", bind(y, (void *)&fam_only, sizeof(sa_family_t)), 0);
    expect_err("bind_after_autobind", bind(y, (void *)&ab, abl), EINVAL);
    int y2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect_eq("sendto_autobound", sendto(y2, "a", 1, 0, (void *)&got, gl), 1);
    close(y);
    close(y2);
    return st_done();
}
