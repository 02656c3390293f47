/* intercept: the cost per intercepted call of each way to see a process's
 * file syscalls without root, on a stat loop, side by side in one run
 * (issue 21: measure each mechanism's floor before choosing).
 *
 *   intercept [CALLS] [ROUNDS]      (default 200000 calls, 5 rounds)
 *
 * Modes, each newfstatat(AT_FDCWD, "/", &st, 0) in a loop:
 *   bare      nothing intercepts
 *   trap      a seccomp filter traps newfstatat (SECCOMP_RET_TRAP) unless it
 *             comes from a gate page; a SIGSYS handler in the process makes
 *             the call through the gate (gVisor's systrap, without patching)
 *   trap+rec  the same, the handler also appending the call and its path to
 *             a ring in memory (what a recording runtime does per call)
 *   patched   no trap: the loop calls what the handler of trap+rec does
 *             (record, then the call through the gate), as a syscall site
 *             rewritten to call the runtime would (the floor of patching)
 *   sud       Syscall User Dispatch (prctl, 5.11+): every syscall outside the
 *             gate traps to the same handler; a restorer in the gate returns
 *   notif     seccomp user notification: a supervisor thread answers each
 *             call with "continue" (SECCOMP_USER_NOTIF_FLAG_CONTINUE)
 *   notif-sync  the same with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (6.6+)
 *   ptrace    a tracer process stops the caller at each call
 *             (SECCOMP_RET_TRACE) and resumes it
 * Prints, per mode, the median ns per call over the rounds and the added
 * cost over bare. x86_64 only. A mode the kernel refuses says so. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static long calls = 200000;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The loop every mode times: ns per call. */
static double stat_loop(void)
{
	struct stat st;
	uint64_t start = now_ns();
	for (long i = 0; i < calls; i++)
		syscall(SYS_newfstatat, AT_FDCWD, "/", &st, 0);
	return (double)(now_ns() - start) / (double)calls;
}

/* ---- the gate: a page whose syscall instructions are let through ---- */

/* gate + 0: syscall; ret       (a call with rax and the arguments set)
 * gate + 8: mov $15, %eax; syscall   (rt_sigreturn: the restorer for sud) */
static unsigned char *gate;
static volatile char selector = SYSCALL_DISPATCH_FILTER_ALLOW;

static void make_gate(void)
{
	gate = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (gate == MAP_FAILED) {
		perror("intercept: mmap");
		exit(1);
	}
	static const unsigned char code[] = {0x0f, 0x05, 0xc3, 0x90, 0x90, 0x90, 0x90, 0x90,
					     0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
	memcpy(gate, code, sizeof code);
	if (mprotect(gate, 4096, PROT_READ | PROT_EXEC) != 0) {
		perror("intercept: mprotect");
		exit(1);
	}
}

static long gate_call(long nr, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("call *%[g]"
			 : "=a"(ret)
			 : [g] "r"(gate), "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* What a recording runtime keeps per call, in memory the supervisor reads. */
static struct {
	uint32_t nr;
	char path[256];
} ring[1024];
static unsigned ring_head;
static int recording;

static void record(long nr, const char *p)
{
	unsigned slot = ring_head++ & 1023;
	ring[slot].nr = (uint32_t)nr;
	size_t n = 0;
	while (n < sizeof ring[slot].path - 1 && p[n]) {
		ring[slot].path[n] = p[n];
		n++;
	}
	ring[slot].path[n] = 0;
}

static void on_sigsys(int sig, siginfo_t *info, void *uc_)
{
	(void)sig;
	(void)info;
	ucontext_t *uc = uc_;
	greg_t *r = uc->uc_mcontext.gregs;
	if (selector == SYSCALL_DISPATCH_FILTER_BLOCK)
		selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	long nr = r[REG_RAX];
	if (info->si_code == 1 /* SYS_SECCOMP */ || info->si_code == 2 /* SYS_USER_DISPATCH */)
		nr = info->si_syscall;
	if (recording)
		record(nr, (const char *)r[REG_RSI]);
	r[REG_RAX] = gate_call(nr, r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10], r[REG_R8], r[REG_R9]);
	if (info->si_code == 2)
		selector = SYSCALL_DISPATCH_FILTER_BLOCK;
}

/* A filter: newfstatat gets `action` unless it comes from the gate page
 * (gate != NULL); everything else is allowed. */
static int install_filter(unsigned action, const unsigned char *from, unsigned flags)
{
	uint64_t page = (uint64_t)(uintptr_t)from;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_newfstatat, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(page >> 32), 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xfffff000u),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)page, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof f / sizeof f[0], f};
	if (!from) { /* no gate: every newfstatat */
		f[3] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action);
		prog.len = 4;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static void sigsys_handler(int with_restorer)
{
	if (!with_restorer) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_sigsys;
		sa.sa_flags = SA_SIGINFO | SA_NODEFER;
		sigaction(SIGSYS, &sa, NULL);
		return;
	}
	/* The kernel's sigaction, to return through the gate's restorer. */
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} ka = {NULL, SA_SIGINFO | SA_NODEFER | 0x04000000 /* SA_RESTORER */, gate + 8, 0};
	void (*h)(int, siginfo_t *, void *) = on_sigsys;
	memcpy(&ka.handler, &h, sizeof h);
	syscall(SYS_rt_sigaction, SIGSYS, &ka, NULL, 8);
}

/* ---- each mode in a child of its own, its ns per call on a pipe ---- */

static double in_child(double (*mode)(void))
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		double ns = mode();
		(void)!write(p[1], &ns, sizeof ns);
		_exit(0);
	}
	close(p[1]);
	double ns = -1;
	if (read(p[0], &ns, sizeof ns) != sizeof ns)
		ns = -1;
	close(p[0]);
	int status;
	waitpid(pid, &status, 0);
	return ns;
}

static double mode_bare(void) { return stat_loop(); }

static double trap_common(int rec)
{
	make_gate();
	recording = rec;
	sigsys_handler(0);
	if (install_filter(SECCOMP_RET_TRAP, gate, 0) != 0)
		return -1;
	return stat_loop();
}
static double mode_trap(void) { return trap_common(0); }
static double mode_trap_rec(void) { return trap_common(1); }

static double mode_patched(void)
{
	make_gate();
	struct stat st;
	uint64_t start = now_ns();
	for (long i = 0; i < calls; i++) {
		record(SYS_newfstatat, "/");
		gate_call(SYS_newfstatat, AT_FDCWD, (long)"/", (long)&st, 0, 0, 0);
	}
	return (double)(now_ns() - start) / (double)calls;
}

static double mode_sud(void)
{
	make_gate();
	sigsys_handler(1);
	if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (unsigned long)gate, 4096, &selector) != 0)
		return -1;
	selector = SYSCALL_DISPATCH_FILTER_BLOCK;
	double ns = stat_loop();
	selector = SYSCALL_DISPATCH_FILTER_ALLOW;
	prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
	return ns;
}

static int listener = -1;
static void *answer_notifications(void *arg)
{
	(void)arg;
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	for (;;) {
		memset(&req, 0, sizeof req);
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			return NULL;
		}
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
}

static double notif_common(int sync)
{
	/* The answering thread inherits the filter, which stops only
	 * newfstatat: it makes none. */
	listener = install_filter(SECCOMP_RET_USER_NOTIF, NULL, SECCOMP_FILTER_FLAG_NEW_LISTENER);
	if (listener < 0)
		return -1;
	if (sync && ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) != 0)
		return -2;
	pthread_t t;
	pthread_create(&t, NULL, answer_notifications, NULL);
	return stat_loop();
}
static double mode_notif(void) { return notif_common(0); }
static double mode_notif_sync(void) { return notif_common(1); }

static double mode_ptrace(void)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		install_filter(SECCOMP_RET_TRACE, NULL, 0);
		double ns = stat_loop();
		(void)!write(p[1], &ns, sizeof ns);
		_exit(0);
	}
	close(p[1]);
	int status;
	waitpid(pid, &status, 0);
	ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL);
	ptrace(PTRACE_CONT, pid, 0, 0);
	for (;;) {
		if (waitpid(pid, &status, 0) < 0 || WIFEXITED(status) || WIFSIGNALED(status))
			break;
		int sig = 0;
		if (WIFSTOPPED(status) && WSTOPSIG(status) != SIGTRAP)
			sig = WSTOPSIG(status);
		ptrace(PTRACE_CONT, pid, 0, sig);
	}
	double ns = -1;
	if (read(p[0], &ns, sizeof ns) != sizeof ns)
		ns = -1;
	close(p[0]);
	return ns;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: intercept [CALLS] [ROUNDS]\n"
		       "ns per intercepted newfstatat for bare, seccomp trap, trap + recording,\n"
		       "Syscall User Dispatch, user notification (plain and sync wake-up) and ptrace\n");
		return 0;
	}
	if (argc > 1)
		calls = atol(argv[1]);
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	if (calls <= 0 || rounds <= 0 || rounds > 99) {
		fprintf(stderr, "intercept: CALLS and ROUNDS (1-99) are positive numbers\n");
		return 2;
	}
	struct {
		const char *name;
		double (*fn)(void);
		double ns[99];
	} modes[] = {
		{"bare", mode_bare, {0}},         {"trap", mode_trap, {0}},     {"trap+rec", mode_trap_rec, {0}},
		{"patched", mode_patched, {0}},
		{"sud", mode_sud, {0}},           {"notif", mode_notif, {0}},   {"notif-sync", mode_notif_sync, {0}},
		{"ptrace", mode_ptrace, {0}},
	};
	size_t n = sizeof modes / sizeof modes[0];
	/* The ptrace mode runs fewer calls: it is two orders slower. */
	for (int r = 0; r < rounds; r++)
		for (size_t m = 0; m < n; m++) {
			size_t k = (m + (size_t)r) % n; /* the order rotates */
			long saved = calls;
			if (!strncmp(modes[k].name, "ptrace", 6) || !strncmp(modes[k].name, "notif", 5))
				calls = calls / 10 > 0 ? calls / 10 : 1;
			modes[k].ns[r] = in_child(modes[k].fn);
			calls = saved;
		}
	double bare = 0;
	printf("| mode | ns per call (median of %d) | added over bare | all rounds |\n|---|---|---|---|\n", rounds);
	for (size_t m = 0; m < n; m++) {
		double sorted[99];
		memcpy(sorted, modes[m].ns, sizeof(double) * (size_t)rounds);
		qsort(sorted, (size_t)rounds, sizeof(double), by_value);
		double med = sorted[rounds / 2];
		if (m == 0)
			bare = med;
		if (med < 0) {
			printf("| %s | refused by this kernel | | |\n", modes[m].name);
			continue;
		}
		printf("| %s | %.0f | %+.0f ns | ", modes[m].name, med, med - bare);
		for (int r = 0; r < rounds; r++)
			printf("%.0f ", modes[m].ns[r]);
		printf("|\n");
	}
	return 0;
}
