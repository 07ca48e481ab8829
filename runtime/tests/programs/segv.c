/* Dies of SIGSEGV by writing to address 0. */
#include <stdio.h>
int main(void) {
    puts("before");
    fflush(stdout);
    *(volatile int *)0 = 1;
    puts("after");
    return 0;
}
