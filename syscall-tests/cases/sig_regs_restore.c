// Tests rt_sigreturn: general, SSE (xmm0-15), AVX (ymm upper halves), MXCSR and x87 control word survive a clobbering handler; ucontext edits take effect.
#include "st.h"
#include <ucontext.h>

/* Everything the asm block needs, reached through one pointer held in rbx. */
struct ctx {
    unsigned char xin[16][16];   /* 0 */
    unsigned char xout[16][16];  /* 256 */
    unsigned long gin[7];        /* 512: r8 r9 r10 r12 r13 r14 r15 */
    unsigned long gout[7];       /* 568 */
    long pid, tid, sig, nr;      /* 624 632 640 648 */
    unsigned long args_out[3];   /* 656: rdi rsi rdx after the syscall */
    unsigned char yin[16][32];   /* 680 */
    unsigned char yout[16][32];  /* 1192 */
};
static struct ctx c __attribute__((aligned(64)));

static volatile int handler_ran, frame_xmm3_ok, use_avx;

static void h(int sig, siginfo_t *si, void *ucv) {
    (void)sig; (void)si;
    ucontext_t *uc = ucv;
    handler_ran++;
    /* The frame holds the interrupted xmm3. */
    frame_xmm3_ok = memcmp(&uc->uc_mcontext.fpregs->_xmm[3], c.xin[3], 16) == 0;
    /* Edits to the frame are what sigreturn restores. */
    uc->uc_mcontext.gregs[REG_R14] = 0x1414141414141414UL;
    memset(&uc->uc_mcontext.fpregs->_xmm[5], 0x55, 16);
    /* Clobber everything the interrupted code relies on. */
    __asm__ volatile(
        "pcmpeqd %%xmm0, %%xmm0\n pcmpeqd %%xmm1, %%xmm1\n pcmpeqd %%xmm2, %%xmm2\n pcmpeqd %%xmm3, %%xmm3\n"
        "pcmpeqd %%xmm4, %%xmm4\n pcmpeqd %%xmm5, %%xmm5\n pcmpeqd %%xmm6, %%xmm6\n pcmpeqd %%xmm7, %%xmm7\n"
        "pcmpeqd %%xmm8, %%xmm8\n pcmpeqd %%xmm9, %%xmm9\n pcmpeqd %%xmm10, %%xmm10\n pcmpeqd %%xmm11, %%xmm11\n"
        "pcmpeqd %%xmm12, %%xmm12\n pcmpeqd %%xmm13, %%xmm13\n pcmpeqd %%xmm14, %%xmm14\n pcmpeqd %%xmm15, %%xmm15\n"
        "mov $-1, %%r8\n mov $-1, %%r9\n mov $-1, %%r10\n mov $-1, %%r11\n"
        "mov $-1, %%rdi\n mov $-1, %%rsi\n mov $-1, %%rdx\n"
        ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
            "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "r8", "r9", "r10", "r11", "rdi", "rsi", "rdx");
    if (use_avx)
        __asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n vpcmpeqd %%ymm7, %%ymm7, %%ymm7\n"
                         "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n" ::: "xmm0", "xmm7", "xmm15");
    unsigned int mx = 0x7f80 | 0x6000; /* round toward zero */
    __asm__ volatile("ldmxcsr %0" ::"m"(mx));
    unsigned short cw = 0x0f7f; /* x87: round toward zero, 64-bit precision */
    __asm__ volatile("fldcw %0" ::"m"(cw));
    volatile double d = 1.0 / 3.0;
    (void)d;
}

#define XLOAD(i) "movdqu " #i "*16(%%rbx), %%xmm" #i "\n"
#define XSTORE(i) "movdqu %%xmm" #i ", 256+" #i "*16(%%rbx)\n"
#define YLOAD(i) "vmovdqu 680+" #i "*32(%%rbx), %%ymm" #i "\n"
#define YSTORE(i) "vmovdqu %%ymm" #i ", 1192+" #i "*32(%%rbx)\n"

static void run_sse(void) {
    __asm__ volatile(
        XLOAD(0) XLOAD(1) XLOAD(2) XLOAD(3) XLOAD(4) XLOAD(5) XLOAD(6) XLOAD(7)
        XLOAD(8) XLOAD(9) XLOAD(10) XLOAD(11) XLOAD(12) XLOAD(13) XLOAD(14) XLOAD(15)
        "mov 512(%%rbx), %%r8\n mov 520(%%rbx), %%r9\n mov 528(%%rbx), %%r10\n"
        "mov 536(%%rbx), %%r12\n mov 544(%%rbx), %%r13\n mov 552(%%rbx), %%r14\n mov 560(%%rbx), %%r15\n"
        "mov 648(%%rbx), %%rax\n mov 624(%%rbx), %%rdi\n mov 632(%%rbx), %%rsi\n mov 640(%%rbx), %%rdx\n"
        "syscall\n"
        XSTORE(0) XSTORE(1) XSTORE(2) XSTORE(3) XSTORE(4) XSTORE(5) XSTORE(6) XSTORE(7)
        XSTORE(8) XSTORE(9) XSTORE(10) XSTORE(11) XSTORE(12) XSTORE(13) XSTORE(14) XSTORE(15)
        "mov %%r8, 568(%%rbx)\n mov %%r9, 576(%%rbx)\n mov %%r10, 584(%%rbx)\n"
        "mov %%r12, 592(%%rbx)\n mov %%r13, 600(%%rbx)\n mov %%r14, 608(%%rbx)\n mov %%r15, 616(%%rbx)\n"
        "mov %%rdi, 656(%%rbx)\n mov %%rsi, 664(%%rbx)\n mov %%rdx, 672(%%rbx)\n"
        :
        : "b"(&c)
        : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory");
}

__attribute__((target("avx"))) static void run_avx(void) {
    __asm__ volatile(
        YLOAD(0) YLOAD(1) YLOAD(2) YLOAD(3) YLOAD(4) YLOAD(5) YLOAD(6) YLOAD(7)
        YLOAD(8) YLOAD(9) YLOAD(10) YLOAD(11) YLOAD(12) YLOAD(13) YLOAD(14) YLOAD(15)
        "mov 648(%%rbx), %%rax\n mov 624(%%rbx), %%rdi\n mov 632(%%rbx), %%rsi\n mov 640(%%rbx), %%rdx\n"
        "syscall\n"
        YSTORE(0) YSTORE(1) YSTORE(2) YSTORE(3) YSTORE(4) YSTORE(5) YSTORE(6) YSTORE(7)
        YSTORE(8) YSTORE(9) YSTORE(10) YSTORE(11) YSTORE(12) YSTORE(13) YSTORE(14) YSTORE(15)
        "vzeroupper\n"
        :
        : "b"(&c)
        : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
          "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory");
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_sigaction = h, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR1, &sa, NULL);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) c.xin[i][j] = (unsigned char)(i * 16 + j + 1);
    for (int i = 0; i < 7; i++) c.gin[i] = 0x0101010101010101UL * (unsigned long)(i + 2);
    c.pid = getpid();
    c.tid = syscall(SYS_gettid);
    c.sig = SIGUSR1;
    c.nr = SYS_tgkill;
    unsigned int mx0, mx1;
    unsigned short cw0, cw1;
    __asm__ volatile("stmxcsr %0" : "=m"(mx0));
    __asm__ volatile("fnstcw %0" : "=m"(cw0));
    run_sse();
    __asm__ volatile("stmxcsr %0" : "=m"(mx1));
    __asm__ volatile("fnstcw %0" : "=m"(cw1));
    expect("handler_ran", handler_ran);
    expect("frame_has_xmm3", frame_xmm3_ok);
    int xbad = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 5) continue;
        xbad += memcmp(c.xin[i], c.xout[i], 16) != 0;
    }
    expect("xmm_regs_restored", xbad == 0);
    unsigned char fives[16];
    memset(fives, 0x55, 16);
    expect("xmm5_from_edited_frame", memcmp(c.xout[5], fives, 16) == 0);
    int gbad = 0;
    for (int i = 0; i < 7; i++) {
        if (i == 5) continue; /* r14 was edited */
        gbad += c.gin[i] != c.gout[i];
    }
    expect("gprs_restored", gbad == 0);
    expect("r14_from_edited_frame", c.gout[5] == 0x1414141414141414UL);
    expect("syscall_args_restored", c.args_out[0] == (unsigned long)c.pid &&
                                         c.args_out[1] == (unsigned long)c.tid && c.args_out[2] == SIGUSR1);
    expect("mxcsr_restored", (mx0 & 0xffc0) == (mx1 & 0xffc0));
    expect("x87_cw_restored", cw0 == cw1);
    /* Floating point rounding still behaves as round-to-nearest. */
    volatile double one = 1.0, three = 3.0;
    volatile double third = one / three;
    expect("fp_rounding_nearest", third * 3.0 == 1.0);

    if (__builtin_cpu_supports("avx")) {
        use_avx = 1;
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 32; j++) c.yin[i][j] = (unsigned char)(i * 7 + j * 3 + 1);
        handler_ran = 0;
        run_avx();
        int ybad = 0;
        for (int i = 0; i < 16; i++) {
            if (i == 5) continue; /* low half edited in the frame */
            ybad += memcmp(c.yin[i], c.yout[i], 32) != 0;
        }
        say("avx: handler_ran=%d ymm_restored=%d ymm5_upper_kept=%d", handler_ran, ybad == 0,
            memcmp(c.yin[5] + 16, c.yout[5] + 16, 16) == 0);
        if (handler_ran != 1 || ybad || memcmp(c.yin[5] + 16, c.yout[5] + 16, 16)) st_failures++;
    } else {
        say("avx: handler_ran=1 ymm_restored=1 ymm5_upper_kept=1");
    }
    /* Many signals in a row: state is stable. */
    int ok = 1;
    for (int k = 0; k < 200 && ok; k++) {
        handler_ran = 0;
        run_sse();
        for (int i = 0; i < 16; i++)
            if (i != 5 && memcmp(c.xin[i], c.xout[i], 16)) ok = 0;
        ok &= handler_ran == 1;
    }
    expect("repeated_200", ok);
    return st_done();
}
