// Tests /proc/self/maps: contains the binary's path with r-xp, [stack], a new anonymous mapping with exact bounds.
#include "st.h"
#include <sys/mman.h>

int main(int argc, char **argv) {
    (void)argc;
    st_init();
    char exe[PATH_MAX];
    if (!realpath(argv[0], exe)) DIE("realpath");
    static char buf[1 << 16];
    void *m = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) DIE("mmap");
    MUST(mprotect((char *)m + 4096, 4096, PROT_READ | PROT_WRITE));
    int fd = MUST(open("/proc/self/maps", O_RDONLY));
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += r;
    buf[got] = 0;
    close(fd);
    int exe_rx = 0, exe_any = 0, stack = 0, lines = 0, split = 0, sorted = 1;
    unsigned long prev_end = 0;
    unsigned long a0 = (unsigned long)m;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        unsigned long lo, hi;
        char perms[8], path[PATH_MAX] = "";
        unsigned long off;
        char dev[16];
        unsigned long ino;
        int n = sscanf(line, "%lx-%lx %7s %lx %15s %lu %4095s", &lo, &hi, perms, &off, dev, &ino, path);
        if (n < 6) { sorted = 0; continue; }
        if (lo < prev_end) sorted = 0;
        prev_end = hi;
        if (strcmp(path, exe) == 0) {
            exe_any = 1;
            if (strcmp(perms, "r-xp") == 0) exe_rx = 1;
        }
        if (strcmp(path, "[stack]") == 0) stack = 1;
        if (lo == a0 + 4096 && hi == a0 + 8192 && strcmp(perms, "rw-p") == 0) split++;
        if (lo == a0 && hi == a0 + 4096 && strcmp(perms, "r--p") == 0) split++;
        if (lo == a0 + 8192 && hi == a0 + 12288 && strcmp(perms, "r--p") == 0) split++;
    }
    expect("maps_has_exe", exe_any);
    expect("maps_exe_r_xp", exe_rx);
    expect("maps_has_stack", stack);
    expect("maps_sorted_well_formed", sorted && lines > 3);
    expect_eq("maps_mprotect_split_into_3", split, 3);
    /* After munmap the range is gone. */
    munmap(m, 3 * 4096);
    fd = MUST(open("/proc/self/maps", O_RDONLY));
    got = 0;
    while ((r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += r;
    buf[got] = 0;
    close(fd);
    char needle[64];
    snprintf(needle, sizeof needle, "%lx-", a0);
    expect("maps_unmapped_gone", strstr(buf, needle) == NULL);
    return st_done();
}
