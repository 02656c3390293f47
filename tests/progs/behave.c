/* behave MODE: programs whose observable behaviour (exit status, signal
 * death, stop/continue reports, output) a tracer must not change. Each mode
 * prints what it observes; the test compares traced and untraced runs byte
 * for byte. */
#include "helpers.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *who, int status)
{
	if (WIFEXITED(status))
		printf("%s: exited %d\n", who, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		printf("%s: killed by %s\n", who, strsignal(WTERMSIG(status)));
	else if (WIFSTOPPED(status))
		printf("%s: stopped by %s\n", who, strsignal(WSTOPSIG(status)));
	else if (WIFCONTINUED(status))
		printf("%s: continued\n", who);
	fflush(stdout);
}

/* A child stops itself with sig; the parent sees the stop, continues it,
 * sees it continue and exit. The continued child waits on a pipe until the
 * parent has seen it continue: were it to exit first, waitpid(WCONTINUED)
 * would reap the exit (a zombie is reported before a continue), and the
 * parent would see no continue. */
static int stop_and_continue(int sig)
{
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		/* Its own process group, which has a parent (us) outside it in
		 * the session, so is never orphaned: the kernel discards
		 * SIGTSTP sent to an orphaned group, as when run by setsid. */
		CHECK(setpgid(0, 0) == 0);
		raise(sig);
		char c;
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(7);
	}
	close(go[0]);
	int status;
	CHECK(waitpid(pid, &status, WUNTRACED) == pid);
	report("child", status);
	CHECK(kill(pid, SIGCONT) == 0);
	CHECK(waitpid(pid, &status, WCONTINUED) == pid);
	report("child", status);
	close(go[1]);  /* EOF: the child may exit now */
	CHECK(waitpid(pid, &status, 0) == pid);
	report("child", status);
	return 0;
}

static volatile sig_atomic_t chld_count, usr1_count, alarm_count;
static void on_chld(int s) { (void)s; chld_count++; }
static void on_usr1(int s) { (void)s; usr1_count++; }
static void on_alarm(int s) { (void)s; alarm_count++; }

/* SIGCHLD arrives (at least once) for children that exit, and every
 * child's status is right. */
static int sigchld(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = on_chld;
	sigaction(SIGCHLD, &sa, NULL);
	for (int i = 0; i < 5; i++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(10 + i);
	}
	int sum = 0, status;
	for (int i = 0; i < 5; i++) {
		pid_t w;
		while ((w = wait(&status)) < 0 && errno == EINTR)
			;
		CHECK(w > 0);
		sum += WEXITSTATUS(status);
	}
	printf("statuses sum to %d, SIGCHLD seen: %s\n", sum, chld_count > 0 ? "yes" : "no");
	return 0;
}

static void *exec_from_thread(void *arg)
{
	(void)arg;
	execl("/bin/echo", "echo", "exec from a non-leader thread", (char *)NULL);
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void *signal_me(void *arg)
{
	pthread_t *main_thread = arg;
	pthread_kill(*main_thread, SIGUSR1);
	return NULL;
}

/* What each lookup call says about name: the results a tracer that
 * answers lookups itself must reproduce (no inode numbers: the tree is
 * made afresh for each run). */
static void look(const char *name)
{
	struct stat st;
	char buf[256];
	printf("%-16s", name);
	if (stat(name, &st) == 0)
		printf(" stat %o/%lld/%lu", (unsigned)st.st_mode, (long long)(S_ISREG(st.st_mode) ? st.st_size : 0),
		       (unsigned long)(S_ISREG(st.st_mode) ? st.st_nlink : 0));
	else
		printf(" stat %s", strerror(errno));
	if (lstat(name, &st) == 0)
		printf(" lstat %o", (unsigned)st.st_mode);
	else
		printf(" lstat %s", strerror(errno));
	struct statx sx;
	if (statx(AT_FDCWD, name, 0, STATX_TYPE | STATX_SIZE, &sx) == 0)
		printf(" statx %o", (unsigned)sx.stx_mode);
	else
		printf(" statx %s", strerror(errno));
	printf(" F_OK %s", access(name, F_OK) == 0 ? "ok" : strerror(errno));
	printf(" X_OK %s", access(name, X_OK) == 0 ? "ok" : strerror(errno));
	ssize_t n = readlink(name, buf, 6);
	if (n >= 0)
		printf(" readlink[6] %.*s", (int)n, buf);
	else
		printf(" readlink %s", strerror(errno));
	int fd = open(name, O_RDONLY);
	printf(" open %s\n", fd >= 0 ? "ok" : strerror(errno));
	if (fd >= 0)
		close(fd);
}

static int run_child(void (*fn)(const char *), const char *arg)
{
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		fn(arg);
		fflush(stdout);
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return status;
}

/* After giving up root, the same names must fail the permission checks. */
static void as_nobody(const char *dir)
{
	CHECK(setgroups(0, NULL) == 0 && setresgid(65534, 65534, 65534) == 0 &&
	      setresuid(65534, 65534, 65534) == 0);
	printf("as nobody:\n");
	look("d/f");
	char abs[512];
	snprintf(abs, sizeof abs, "%s/d/f", dir);
	printf("absolute: %s\n", access(abs, F_OK) == 0 ? "ok" : strerror(errno));
}

/* In a mount namespace of its own, with a tmpfs over d: d/f is gone. */
static void in_new_mounts(const char *dir)
{
	(void)dir;
	CHECK(unshare(CLONE_NEWNS) == 0);
	CHECK(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	CHECK(mount("tmpfs", "d", "tmpfs", 0, NULL) == 0);
	printf("under a tmpfs:\n");
	look("d/f");
	look("d");
}

static void chrooted(const char *dir)
{
	CHECK(chroot(dir) == 0);
	printf("chrooted:\n");
	look("/d/f");
	look("/tmp");
	look("/d/..");
}

/* Lookups of every kind on a small tree (made in ./lookups.d): existing, missing, symlinks,
 * names that mean something else to each process (/proc/self), and the
 * same after a change of credentials, mount namespace and root. */
static int lookups(void)
{
	char dir[4096];
	CHECK(getcwd(dir, sizeof dir - 16) != NULL);
	strcat(dir, "/lookups.d");
	CHECK(mkdir(dir, 0700) == 0);
	CHECK(chdir(dir) == 0);
	CHECK(mkdir("d", 0755) == 0);
	int fd = open("d/f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, "12345", 5) == 5);
	CHECK(dup2(fd, 9) == 9);
	close(fd);
	CHECK(symlink("d/f", "l") == 0 && symlink("/proc/self/fd/9", "pfd") == 0 &&
	      symlink("nowhere", "dangling") == 0);
	const char *names[] = {"d/f", "d", ".", "d/..", "./d/../d/f", "l", "pfd", "dangling", "missing",
			       "d/missing", "nodir/x", "d/f/x", "d/", "/proc/self/fd/9", "/dev/fd/9",
			       "pfd/x", "/proc/self/fd/9/x"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		look(names[i]);
	if (geteuid() == 0) {
		run_child(as_nobody, dir);
		run_child(in_new_mounts, dir);
		run_child(chrooted, dir);
	}
	unlink("d/f");
	rmdir("d");
	unlink("l");
	unlink("pfd");
	unlink("dangling");
	CHECK(chdir("/") == 0);
	CHECK(rmdir(dir) == 0);
	return 0;
}

int main(int argc, char **argv)
{
	USAGE(1, "exit|signal|segv|stop|tstp|sigchld|thread-exec|vfork|alarm|thread-signal|output|"
		 "interrupted-read|lookups");
	const char *m = argv[1];
	if (strcmp(m, "exit") == 0) {
		printf("exiting 42\n");
		return 42;
	}
	if (strcmp(m, "signal") == 0) {
		printf("raising SIGTERM\n");
		fflush(stdout);
		raise(SIGTERM);
		return 1;
	}
	if (strcmp(m, "segv") == 0) {
		signal(SIGSEGV, SIG_DFL);
		int *volatile p = NULL; /* the compiler cannot see it is NULL */
		return *p;
	}
	if (strcmp(m, "stop") == 0)
		return stop_and_continue(SIGSTOP);
	if (strcmp(m, "tstp") == 0)
		return stop_and_continue(SIGTSTP);
	if (strcmp(m, "sigchld") == 0)
		return sigchld();
	if (strcmp(m, "thread-exec") == 0) {
		pthread_t a, b;
		pthread_create(&a, NULL, sleeper, NULL);
		pthread_create(&b, NULL, exec_from_thread, NULL);
		pthread_join(b, NULL);
		return 1; /* not reached: exec replaces every thread */
	}
	if (strcmp(m, "vfork") == 0) {
		pid_t pid = vfork();
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(5);
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		report("vfork child", status);
		return 0;
	}
	if (strcmp(m, "alarm") == 0) {
		struct sigaction sa = {0};
		sa.sa_handler = on_alarm;
		sigaction(SIGALRM, &sa, NULL);
		alarm(1);
		while (!alarm_count)
			pause();
		printf("alarm handled %d time(s)\n", (int)alarm_count);
		return 0;
	}
	if (strcmp(m, "thread-signal") == 0) {
		struct sigaction sa = {0};
		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, NULL);
		pthread_t self = pthread_self(), t;
		pthread_create(&t, NULL, signal_me, &self);
		pthread_join(t, NULL);
		while (!usr1_count)
			usleep(1000);
		printf("SIGUSR1 handled %d time(s)\n", (int)usr1_count);
		return 0;
	}
	if (strcmp(m, "output") == 0) {
		/* 1 MiB on stdout interleaved with lines on stderr. */
		char line[1024];
		for (int i = 0; i < 1024; i++) {
			memset(line, 'a' + i % 26, sizeof line - 1);
			line[sizeof line - 1] = '\n';
			fwrite(line, 1, sizeof line, stdout);
			if (i % 256 == 0)
				fprintf(stderr, "progress %d\n", i);
		}
		return 0;
	}
	if (strcmp(m, "interrupted-read") == 0) {
		/* A blocking read interrupted by a signal handler without
		 * SA_RESTART returns EINTR; with SA_RESTART it goes on. */
		int fds[2];
		CHECK(pipe(fds) == 0);
		struct sigaction sa = {0};
		sa.sa_handler = on_alarm;
		sigaction(SIGALRM, &sa, NULL);
		alarm(1);
		char c;
		ssize_t n = read(fds[0], &c, 1);
		printf("read returned %zd (%s)\n", n, n < 0 ? strerror(errno) : "data");
		/* And a file syscall the tracer stops is restarted transparently. */
		sa.sa_flags = SA_RESTART;
		sigaction(SIGALRM, &sa, NULL);
		alarm(1);
		if (fork() == 0) {
			sleep(2);
			CHECK(write(fds[1], "x", 1) == 1);
			_exit(0);
		}
		n = read(fds[0], &c, 1);
		printf("restarted read returned %zd\n", n);
		int fd = open("/dev/null", O_RDONLY);
		printf("open after it: %s\n", fd >= 0 ? "ok" : strerror(errno));
		wait(NULL);
		return 0;
	}
	if (strcmp(m, "lookups") == 0)
		return lookups();
	fprintf(stderr, "unknown mode %s\n", m);
	return 2;
}
