// Tests sysinfo: totalram > 0, freeram <= totalram, uptime > 0, procs > 0, mem_unit set; /proc/meminfo and /proc/uptime agree.
#include "st.h"
#include <sys/sysinfo.h>

int main(void) {
    st_init();
    struct sysinfo si;
    expect_err("sysinfo", sysinfo(&si), 0);
    expect("totalram_positive", si.totalram > 0);
    expect("freeram_le_totalram", si.freeram <= si.totalram);
    expect("uptime_positive", si.uptime > 0);
    expect("procs_positive", si.procs > 0);
    expect("mem_unit_positive", si.mem_unit > 0);
    expect("freeswap_le_totalswap", si.freeswap <= si.totalswap);
    char buf[4096] = {0};
    int fd = open("/proc/meminfo", O_RDONLY);
    expect_err("open_meminfo", fd, 0);
    read(fd, buf, sizeof buf - 1);
    close(fd);
    unsigned long kb = 0;
    char *mt = strstr(buf, "MemTotal:");
    if (mt) kb = strtoul(mt + 9, NULL, 10);
    expect("meminfo_total_positive", kb > 0);
    expect("meminfo_has_memfree", strstr(buf, "MemFree:") != NULL);
    memset(buf, 0, sizeof buf);
    fd = open("/proc/uptime", O_RDONLY);
    expect_err("open_uptime", fd, 0);
    read(fd, buf, sizeof buf - 1);
    close(fd);
    double up = 0, idle = 0;
    expect_eq("uptime_two_fields", sscanf(buf, "%lf %lf", &up, &idle), 2);
    expect("uptime_positive_file", up > 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    expect("nprocs_online_positive", cpus > 0);
    expect("get_nprocs_positive", get_nprocs() > 0);
    memset(buf, 0, sizeof buf);
    fd = open("/proc/loadavg", O_RDONLY);
    expect_err("open_loadavg", fd, 0);
    read(fd, buf, sizeof buf - 1);
    close(fd);
    double l1;
    expect_eq("loadavg_parse", sscanf(buf, "%lf", &l1), 1);
    expect_err("sysinfo_efault", syscall(SYS_sysinfo, (void *)8), EFAULT);
    return st_done();
}
