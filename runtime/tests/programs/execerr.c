/* execve errors: a missing file (ENOENT), a bad ELF (ENOEXEC), a directory (EACCES). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/moat_badelf_%d", getpid());
    FILE *f = fopen(path, "w");
    fputs("\177ELF\002\001\001garbage garbage garbage garbage garbage garbage garbage", f);
    fclose(f);
    chmod(path, 0755);
    char *argv[] = {path, NULL};
    char *envp[] = {NULL};
    execve("/nonexistent/prog", argv, envp);
    printf("missing: %s\n", strerror(errno));
    execve(path, argv, envp);
    printf("bad elf: %s\n", strerror(errno));
    execve("/tmp", argv, envp);
    printf("directory: %s\n", strerror(errno));
    unlink(path);
    return 0;
}
