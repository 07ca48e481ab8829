/* fork_exec: fork(2) + execve(2) of /bin/true (dynamically linked: loader, libc mapping)
 * + waitpid(2), per op: process creation, address-space copy and teardown. */
#include <sys/wait.h>
#include <unistd.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 1000);
	char *const args[] = {"/bin/true", NULL};
	char *const env[] = {NULL};
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			DIE("fork");
		if (pid == 0) {
			execve(args[0], args, env);
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid)
			DIE("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "fork_exec: /bin/true exited with status 0x%x\n", status);
			return 1;
		}
	}
	long long t1 = now_ns();
	report("fork_exec", t0, t1, n);
	return 0;
}
