/* runtime.c: the in-process runtime (inproc_abi.h), preloaded into every
 * dynamically linked program of a traced tree.
 *
 * Init (a constructor, only when BS_IP_ENV is set): map the gate, map the
 * area, patch the handled "mov $nr,%eax; syscall" sites of libc.so.6 and
 * ld.so to jump to a stub that calls bs_entry (entry.S), and hide our two
 * variables from environ. Init code may call libc.
 *
 * The hot path (bs_handle and everything it calls) calls no libc at all,
 * never touches vector registers (-mgeneral-regs-only), makes its own
 * syscalls through the gate, and writes its record straight into the
 * thread's ring. When it cannot handle a call it makes the call from
 * bs_raw_syscall, outside the gate, where the tracer sees it.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <link.h>
#include <linux/stat.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "sandbox/backend/inproc/inproc_abi.h"

#define HIDDEN __attribute__((visibility("hidden")))
#define PAGE 4096UL
#define E(x) (-(long)(x))

/* errno values (asm-generic), so that no libc header is needed for them on
 * the hot path. */
enum {
	xEPERM = 1, xENOENT = 2, xEBADF = 9, xENOMEM = 12, xEACCES = 13, xEFAULT = 14,
	xEBUSY = 16, xEEXIST = 17, xEXDEV = 18, xENOTDIR = 20, xEISDIR = 21, xETXTBSY = 26,
	xEROFS = 30, xENAMETOOLONG = 36, xENOTEMPTY = 39, xELOOP = 40, xEINTR = 4,
};

/* entry.S */
extern const char bs_gate_template[] HIDDEN, bs_gate_template_end[] HIDDEN;
extern long bs_raw_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6) HIDDEN;
extern void bs_entry(void) HIDDEN;
long bs_handle(long nr, long *args) HIDDEN;

typedef long (*gate_fn)(long, long, long, long, long, long, long);

/* State set once by init, read by the hot path. */
static struct bs_ip_area *area;
static gate_fn gate;
static char *env_area;     /* "BSANDBOX_INPROC=<path>" */
static char *env_preload;  /* "LD_PRELOAD=<our library>" */
static const char *our_lib; /* our library, as LD_PRELOAD named it */
static size_t our_lib_len;
static char *scratch;        /* exec's envp, when free */
static size_t scratch_bytes;
static uint32_t scratch_owner; /* tid using scratch, 0: free */

/* The thread in the handler (signal handlers that nest make their call
 * outside the gate). Initial-exec: no call to read it. */
static __thread uint32_t busy_tid __attribute__((tls_model("initial-exec")));

/* The compiler may emit calls to these for struct copies: ours, hidden. */
HIDDEN void *memcpy(void *d, const void *s, size_t n)
{
	char *dc = d;
	const char *sc = s;
	while (n--)
		*dc++ = *sc++;
	return d;
}

HIDDEN void *memset(void *d, int c, size_t n)
{
	char *dc = d;
	while (n--)
		*dc++ = (char)c;
	return d;
}

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		++n;
	return n;
}

static int sprefix(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

static long G(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	return gate(nr, a1, a2, a3, a4, a5, a6);
}
#define G0(nr) G(nr, 0, 0, 0, 0, 0, 0)
#define G1(nr, a) G(nr, (long)(a), 0, 0, 0, 0, 0)
#define G2(nr, a, b) G(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define G3(nr, a, b, c) G(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define G4(nr, a, b, c, d) G(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define G5(nr, a, b, c, d, e) G(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

static void count(__u64 *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- rings */

static struct bs_ip_ring *ring_at(uint32_t i)
{
	return (struct bs_ip_ring *)((char *)area + area->rings_offset + (uint64_t)i * area->ring_stride);
}

static uint32_t *tids(void)
{
	return (uint32_t *)((char *)area + area->tids_offset);
}

/* The thread's ring, claimed if it has none; NULL: none free. */
static struct bs_ip_ring *ring_of(uint32_t tid)
{
	if (tid == 0 || tid >= area->max_tid)
		return NULL;
	uint32_t *t = tids();
	uint32_t entry = __atomic_load_n(&t[tid], __ATOMIC_ACQUIRE);
	if (!(entry & BS_IP_TID_TRACED) && !area->all_traced)
		return NULL; /* not a thread the tracer knows: left to it */
	uint32_t slot = entry & ~BS_IP_TID_TRACED;
	if (slot && slot <= area->nrings) {
		struct bs_ip_ring *r = ring_at(slot - 1);
		if (__atomic_load_n(&r->owner, __ATOMIC_ACQUIRE) == tid)
			return r;
	}
	for (uint32_t i = 0; i < area->nrings; ++i) {
		struct bs_ip_ring *r = ring_at(i);
		uint32_t zero = 0;
		if (__atomic_load_n(&r->owner, __ATOMIC_RELAXED) != 0)
			continue;
		if (!__atomic_compare_exchange_n(&r->owner, &zero, tid, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		uint32_t hw = __atomic_load_n(&area->high_water, __ATOMIC_RELAXED);
		while (hw < i + 1 &&
		       !__atomic_compare_exchange_n(&area->high_water, &hw, i + 1, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			;
		__atomic_store_n(&t[tid], BS_IP_TID_TRACED | (i + 1), __ATOMIC_RELEASE);
		return r;
	}
	return NULL;
}

static char *ring_data(struct bs_ip_ring *r)
{
	return (char *)r + BS_IP_RING_DATA;
}

/* The most one record of a call with this descriptor can take. */
static uint64_t max_record(const struct bs_sc_desc *d)
{
	uint64_t n = 0;
	n += d->path1 != 0;
	n += d->path2 != 0;
	n += d->dirfd1 != 0;
	n += d->dirfd2 != 0;
	n += d->resolve != 0;
	return (sizeof(struct bs_ip_file) + n * (BS_USER_PATH_MAX + 1) + BS_IP_NSTR + 7) & ~7UL;
}

/* Whether records of max bytes fit, with a PAD before each. */
static int room_for(struct bs_ip_ring *r, uint64_t max, int records)
{
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	return head - tail + 2 * max * (uint64_t)records <= area->ring_bytes;
}

struct reservation {
	struct bs_ip_ring *r;
	uint64_t start, at; /* start: head when staged; at: the record */
	struct bs_ip_file *f;
	char *cur; /* where the next string goes */
};

/* Stages a record of at most max bytes at head (after a PAD up to the end
 * of the ring if it would not fit there): the record is written past
 * head, where only this thread writes (its signal handlers make their
 * calls outside the gate), and commit() then moves head over it with a
 * compare-and-swap. 0: no room. */
static int stage(struct bs_ip_ring *r, uint64_t max, struct reservation *v)
{
	const uint64_t rb = area->ring_bytes;
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	uint64_t off = head % rb;
	uint64_t pad = rb - off < max ? rb - off : 0;
	if (head + pad + max - tail > rb)
		return 0;
	if (pad) {
		struct bs_ip_rec *p = (struct bs_ip_rec *)(ring_data(r) + off);
		p->size = (uint32_t)pad;
		p->type = BS_IP_REC_PAD;
		p->state = BS_IP_COMMITTED; /* published by the move of head */
	}
	v->r = r;
	v->start = head;
	v->at = head + pad;
	v->f = (struct bs_ip_file *)(ring_data(r) + v->at % rb);
	v->cur = (char *)(v->f + 1);
	uint64_t *w = (uint64_t *)v->f;
	for (size_t i = 0; i < sizeof *v->f / 8; ++i)
		w[i] = 0; /* state WRITING */
	return 1;
}

/* Reserves the record's exact size (moving head past it and any PAD
 * before it), then commits it. 0: head moved under it (a nested producer:
 * cannot happen, they fall back), the record is dropped. */
static int commit(struct reservation *v, uint16_t type)
{
	struct bs_ip_file *f = v->f;
	uint64_t size = ((uint64_t)(v->cur - (char *)f) + 7) & ~7UL;
	f->rec.size = (uint32_t)size;
	f->rec.type = type;
	uint64_t expect = v->start;
	if (!__atomic_compare_exchange_n(&v->r->head, &expect, v->at + size, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
		count(&area->fallbacks);
		return 0;
	}
	__atomic_store_n(&f->rec.state, BS_IP_COMMITTED, __ATOMIC_RELEASE);
	return 1;
}

/* ---------------------------------------------------------------- strings */

/* Errors that mean the kernel copied the path arguments before failing. */
static int path_copied(long ret)
{
	if (ret >= 0)
		return 1;
	switch (-ret) {
	case xENOENT: case xENOTDIR: case xEACCES: case xEPERM: case xELOOP: case xENAMETOOLONG:
	case xEEXIST: case xEISDIR: case xEROFS: case xETXTBSY: case xEXDEV: case xENOTEMPTY: case xEBUSY:
		return 1;
	}
	return 0;
}

/* Ends string i at v->cur (its bytes written there): length, NUL, flags. */
static void end_string(struct reservation *v, int i, char *start, uint8_t flags, int present)
{
	v->f->len[i] = (uint32_t)(v->cur - start);
	*v->cur++ = 0;
	v->f->sflags[i] = flags;
	if (present)
		v->f->present |= (uint8_t)(1u << i);
}

/* A path argument into the record, as read_user_string reads it: up to
 * BS_USER_PATH_MAX bytes, longer: truncated. direct: the kernel read it,
 * so it can be read; else process_vm_readv, page by page. Returns the
 * flags. */
static uint8_t put_user_string(struct reservation *v, int i, uint32_t tid, const char *p, int direct)
{
	char *start = v->cur;
	uint8_t flags = 0;
	if (!p) {
		end_string(v, i, start, 0, 0);
		return 0;
	}
	if (direct) {
		size_t n = 0;
		while (n < BS_USER_PATH_MAX && p[n])
			start[n] = p[n], ++n;
		v->cur = start + n;
		if (n == BS_USER_PATH_MAX)
			flags = BS_SF_TRUNCATED;
	} else {
		uintptr_t addr = (uintptr_t)p;
		size_t n = 0;
		for (;;) {
			if (n >= BS_USER_PATH_MAX) {
				flags = BS_SF_TRUNCATED;
				break;
			}
			size_t chunk = PAGE - (addr & (PAGE - 1));
			if (chunk > BS_USER_PATH_MAX - n)
				chunk = BS_USER_PATH_MAX - n;
			struct { void *base; size_t len; } local = {start + n, chunk}, remote = {(void *)addr, chunk};
			long got = G(SYS_process_vm_readv, tid, (long)&local, 1, (long)&remote, 1, 0);
			if (got <= 0) {
				n = 0;
				flags = BS_SF_FAULT;
				break;
			}
			size_t k = 0;
			while (k < (size_t)got && start[n + k])
				++k;
			n += k;
			if (k < (size_t)got)
				break;
			addr += (size_t)got;
		}
		v->cur = start + n;
	}
	end_string(v, i, start, flags, 1);
	return flags;
}

static char *put_dec(char *o, unsigned long n)
{
	char tmp[24];
	int k = 0;
	do
		tmp[k++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	while (k)
		*o++ = tmp[--k];
	*o = 0;
	return o;
}

struct named {
	uint16_t rflags;
	uint32_t magic;
	uint64_t ino, mnt;
};

/* 256 bytes the handler lends its callees for what the kernel fills
 * (struct stat, statx, statfs): one buffer keeps the stack small. */
union scratch {
	char bytes[256];
	struct statx sx;
	struct { long f_type; long rest[15]; } fs;
};

static uint32_t magic_of(uint64_t mnt, int fd, union scratch *buf)
{
	if (mnt && mnt < (1ULL << 32)) {
		for (int i = 0; i < BS_IP_MAGIC_CACHE; ++i) {
			uint64_t e = __atomic_load_n(&area->magic_cache[i], __ATOMIC_ACQUIRE);
			if (e && (e >> 32) == mnt)
				return (uint32_t)e;
		}
	}
	if (G2(SYS_fstatfs, fd, &buf->fs) != 0)
		return 0;
	uint32_t magic = (uint32_t)buf->fs.f_type;
	if (mnt && mnt < (1ULL << 32) && magic) {
		uint64_t e = mnt << 32 | magic;
		for (int i = 0; i < BS_IP_MAGIC_CACHE; ++i) {
			uint64_t zero = 0;
			if (__atomic_compare_exchange_n(&area->magic_cache[i], &zero, e, 0, __ATOMIC_ACQ_REL,
							__ATOMIC_RELAXED) ||
			    (zero >> 32) == mnt)
				break;
		}
	}
	return magic;
}

/* String i: what /proc/thread-self/fd/<fd> names, as ProcReader::describe
 * says it (info: the object's type, inode, mount and file system too).
 * Returns 0 when it is absent (describe() false). */
static __attribute__((noinline)) int put_fd_name(struct reservation *v, int i, long fd, int info, struct named *out,
						union scratch *buf)
{
	char link[48] = "/proc/thread-self/fd/";
	put_dec(link + 21, (unsigned long)fd);
	char *start = v->cur;
	long n = G3(SYS_readlink, link, start, BS_USER_PATH_MAX);
	if (n < 0) {
		if (n != E(xENAMETOOLONG)) {
			end_string(v, i, start, 0, 0);
			return 0;
		}
		end_string(v, i, start, BS_SF_TRUNCATED, 1);
		return 1;
	}
	v->cur = start + n;
	if (n == 0 || start[0] != '/') {
		end_string(v, i, start, BS_SF_UNREACHABLE, 1);
		return 1;
	}
	static const char deleted[] = " (deleted)";
	const long dl = sizeof deleted - 1;
	int maybe_deleted = n >= dl;
	for (long k = 0; maybe_deleted && k < dl; ++k)
		if (start[n - dl + k] != deleted[k])
			maybe_deleted = 0;
	uint8_t flags = 0;
	if (info || maybe_deleted) {
		const struct statx *sxp = &buf->sx;
		if (G5(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_NLINK | STATX_INO | STATX_MNT_ID, &buf->sx) == 0) {
			struct {
				uint32_t mask, nlink, dev_major, dev_minor;
				uint16_t mode;
				uint64_t ino, mnt_id;
			} sx = {sxp->stx_mask, sxp->stx_nlink, sxp->stx_dev_major, sxp->stx_dev_minor,
				sxp->stx_mode, sxp->stx_ino, sxp->stx_mnt_id};
			if ((sx.mode & 0170000) == 0040000 && out)
				out->rflags |= BS_RF_DIR;
			if (maybe_deleted && sx.nlink == 0) {
				v->cur -= dl;
				flags |= BS_SF_DELETED;
			}
			if (out) {
				int has_mnt = (sx.mask & STATX_MNT_ID) != 0;
				out->ino = sx.ino;
				out->mnt = has_mnt ? sx.mnt_id : ((uint64_t)sx.dev_major << 32 | sx.dev_minor);
				out->magic = magic_of(has_mnt ? sx.mnt_id : 0, (int)fd, buf);
			}
		}
	}
	end_string(v, i, start, flags, 1);
	return 1;
}

/* ---------------------------------------------------------------- handler */

static long fallback(long nr, const long *a)
{
	if (area)
		count(&area->fallbacks);
	return bs_raw_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void fill_fixed(struct bs_ip_file *f, uint32_t tid, long nr, const long *a, long ret, uint64_t flags)
{
	f->tid = tid;
	f->nr = (int32_t)nr;
	f->ret = ret;
	for (int i = 0; i < 6; ++i)
		f->args[i] = (uint64_t)a[i];
	f->flags = flags;
	f->created = -1;
}

/* path1 and path2 of the call, then its dirs. Returns path1's flags, or
 * 0xff when path1 is present and empty (for BS_DESC_SKIP_EMPTY_PATH). */
static int put_paths(struct reservation *v, uint32_t tid, const struct bs_sc_desc *d, const long *a, int direct,
		     union scratch *buf)
{
	const char *p1 = d->path1 ? (const char *)a[d->path1 - 1] : NULL;
	const char *p2 = d->path2 ? (const char *)a[d->path2 - 1] : NULL;
	char *s1 = v->cur;
	uint8_t f1 = put_user_string(v, BS_IP_PATH1, tid, p1, direct);
	int empty1 = p1 && !f1 && v->f->len[BS_IP_PATH1] == 0;
	if (empty1 && (d->desc_flags & BS_DESC_SKIP_EMPTY_PATH))
		return 0xff;
	char *s2 = v->cur;
	put_user_string(v, BS_IP_PATH2, tid, p2, direct);
	/* As fill_file_event: relative (or absent, or empty) path1, a dirfd. */
	int rel1 = d->path1 && !(p1 && v->f->len[BS_IP_PATH1] && s1[0] == '/');
	int rel2 = p2 && !(d->desc_flags & BS_DESC_PATH2_IS_TEXT) &&
		   !(v->f->len[BS_IP_PATH2] && s2[0] == '/');
	long dfd1 = d->dirfd1 ? (int)a[d->dirfd1 - 1] : AT_FDCWD;
	long dfd2 = d->dirfd2 ? (int)a[d->dirfd2 - 1] : AT_FDCWD;
	if (rel1 && dfd1 != AT_FDCWD)
		put_fd_name(v, BS_IP_DIR1, dfd1, 0, NULL, buf);
	else
		end_string(v, BS_IP_DIR1, v->cur, 0, 0);
	if (rel2 && dfd2 != AT_FDCWD)
		put_fd_name(v, BS_IP_DIR2, dfd2, 0, NULL, buf);
	else
		end_string(v, BS_IP_DIR2, v->cur, 0, 0);
	return f1;
}

static long do_exec(long nr, const long *a, uint32_t tid, struct bs_ip_ring *r, union scratch *buf);

long bs_handle(long nr, long *a)
{
	if (*(volatile const uint32_t *)BS_IP_FLAGS_ADDR || nr < 0 || nr >= BS_IP_MAX_NR || !area->handled[nr])
		return fallback(nr, a);
	const struct bs_sc_desc *d = &area->desc[nr];
	/* What a record cannot say as the tracer would: a socket address, an
	 * open_how, the new cwd or root, an exec that needs the environment
	 * put back (execveat). Traced instead, whatever handled[] says. */
	if ((d->desc_flags & (BS_DESC_SOCKADDR | BS_DESC_MSGHDR | BS_DESC_FLAGS_IN_OPEN_HOW)) ||
	    d->resolve == BS_RESOLVE_PWD || d->resolve == BS_RESOLVE_ROOT || nr == SYS_execveat)
		return fallback(nr, a);

	/* fstat() in disguise (newfstatat/statx, AT_EMPTY_PATH, ""): the call
	 * through the gate and nothing else. If the name was not empty after
	 * all, the (pure) call is made again below, and that one counts. */
	if ((d->desc_flags & BS_DESC_SKIP_EMPTY_PATH) && d->flags && d->path1 &&
	    (a[d->flags - 1] & AT_EMPTY_PATH) && a[d->path1 - 1]) {
		long ret = gate(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if ((path_copied(ret) || ret == E(xEBADF)) && *(const char *)a[d->path1 - 1] == 0)
			return ret;
	}

	union scratch buf;
	uint32_t tid = (uint32_t)G0(SYS_gettid);
	if (busy_tid == tid)
		return nr == SYS_execve ? do_exec(nr, a, tid, NULL, &buf) : fallback(nr, a);
	/* From before the ring is claimed to the commit: a call from a signal
	 * handler in between falls back (it would take the room checked). */
	busy_tid = tid;
	struct bs_ip_ring *r = ring_of(tid);
	if (nr == SYS_execve) {
		busy_tid = 0;
		return do_exec(nr, a, tid, r, &buf);
	}
	uint64_t max = max_record(d);
	if (!r || !room_for(r, max, 1)) {
		busy_tid = 0;
		return fallback(nr, a);
	}

	uint64_t flags = d->flags ? (uint64_t)a[d->flags - 1] : 0;
	int8_t created = -1;
	if (d->resolve == BS_RESOLVE_RETFD) {
		uint64_t of = d->sys == BS_SYS_CREAT ? (O_CREAT | O_WRONLY | O_TRUNC) : flags;
		const char *p1 = d->path1 ? (const char *)a[d->path1 - 1] : NULL;
		if ((of & O_CREAT) && !(of & O_EXCL) && (of & O_TMPFILE) != O_TMPFILE && p1) {
			long dfd = d->dirfd1 ? (int)a[d->dirfd1 - 1] : AT_FDCWD;
			long e = G4(SYS_newfstatat, dfd, p1, buf.bytes,
				    AT_EMPTY_PATH | ((of & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0));
			created = e == 0 ? 0 : e == E(xENOENT) ? 1 : -1;
		}
	}

	long ret = gate(nr, a[0], a[1], a[2], a[3], a[4], a[5]);

	struct reservation v;
	if (!stage(r, max, &v)) {
		/* Only a nested producer could have taken the room checked
		 * above, and those fall back: cannot happen. */
		count(&area->fallbacks);
		busy_tid = 0;
		return ret;
	}
	struct bs_ip_file *f = v.f;
	fill_fixed(f, tid, nr, a, ret, flags);
	int f1 = put_paths(&v, tid, d, a, path_copied(ret), &buf);
	if (f1 == 0xff) {
		busy_tid = 0; /* nothing reserved */
		return ret;
	}
	f->created = f1 ? -1 : created;
	struct named res = {0, 0, 0, 0};
	int fd = -1;
	if (d->resolve == BS_RESOLVE_RETFD && ret >= 0)
		fd = (int)ret;
	else if (d->resolve == BS_RESOLVE_FDARG && d->fd && (int)a[d->fd - 1] >= 0)
		fd = (int)a[d->fd - 1];
	if (fd >= 0 && put_fd_name(&v, BS_IP_RESULT, fd, 1, &res, &buf)) {
		f->result_rflags = res.rflags;
		f->result_ino = res.ino;
		f->result_mnt = res.mnt;
		f->result_magic = res.magic;
	} else if (fd < 0) {
		end_string(&v, BS_IP_RESULT, v.cur, 0, 0);
	}
	if (commit(&v, BS_IP_REC_FILE))
		count(&area->handled_calls);
	busy_tid = 0;
	return ret;
}

/* ---------------------------------------------------------------- exec */

static int preload_has_ours(const char *val)
{
	/* val: the value after "LD_PRELOAD=": a list split by ':' or ' '. */
	const char *p = val;
	while (*p) {
		const char *q = p;
		while (*q && *q != ':' && *q != ' ')
			++q;
		if ((size_t)(q - p) == our_lib_len) {
			size_t k = 0;
			while (k < our_lib_len && p[k] == our_lib[k])
				++k;
			if (k == our_lib_len)
				return 1;
		}
		p = *q ? q + 1 : q;
	}
	return 0;
}

/* envp with our two variables put back into the buffer buf (bytes): NULL
 * if it does not fit or envp cannot be read. */
static char **build_envp(uint32_t tid, char *const *envp, char *buf, size_t bytes)
{
	/* The pointers first, copied safely (the array may be bad: then
	 * execve fails with EFAULT, as it would have). */
	char **out = (char **)buf;
	size_t max_ptrs = bytes / 2 / sizeof(char *);
	size_t n = 0;
	if (envp) {
		for (;;) {
			if (n + 3 >= max_ptrs)
				return NULL;
			uintptr_t addr = (uintptr_t)(envp + n);
			size_t chunk = PAGE - (addr & (PAGE - 1));
			if (chunk > (max_ptrs - n - 3) * sizeof(char *))
				chunk = (max_ptrs - n - 3) * sizeof(char *);
			chunk &= ~(sizeof(char *) - 1);
			if (!chunk)
				return NULL;
			struct { void *base; size_t len; } local = {out + n, chunk}, remote = {(void *)addr, chunk};
			long got = G(SYS_process_vm_readv, tid, (long)&local, 1, (long)&remote, 1, 0);
			if (got <= 0 || got % sizeof(char *))
				return NULL;
			size_t k = (size_t)got / sizeof(char *), end = n + k;
			while (n < end && out[n])
				++n;
			if (n < end)
				break;
		}
	}
	char *strings = buf + bytes / 2;
	char *limit = buf + bytes;
	size_t w = 0;
	int have_preload = 0;
	for (size_t i = 0; i < n; ++i) {
		char *s = out[i];
		if (sprefix(s, BS_IP_ENV "="))
			continue;
		if (sprefix(s, "LD_PRELOAD=")) {
			have_preload = 1;
			if (!preload_has_ours(s + 11)) {
				size_t len = slen(s + 11);
				if ((size_t)(limit - strings) < 12 + our_lib_len + len + 1)
					return NULL;
				char *o = strings;
				memcpy(o, env_preload, 11 + our_lib_len);
				o += 11 + our_lib_len;
				if (len)
					*o++ = ':';
				memcpy(o, s + 11, len + 1);
				s = strings;
				strings = o + len + 1;
			}
		}
		out[w++] = s;
	}
	if (!have_preload)
		out[w++] = env_preload;
	out[w++] = env_area;
	out[w] = NULL;
	return out;
}

static long do_exec(long nr, const long *a, uint32_t tid, struct bs_ip_ring *r, union scratch *sbuf)
{
	/* The environment buffer: the one set aside at init, unless another
	 * live thread of this process has it (a vfork child that exec'd left
	 * its tid there: that thread is not ours). */
	char *buf = NULL;
	size_t bytes = 0;
	int mapped = 0;
	uint32_t owner = __atomic_load_n(&scratch_owner, __ATOMIC_ACQUIRE);
	if (scratch && owner != 0 && owner != tid &&
	    G3(SYS_tgkill, G0(SYS_getpid), owner, 0) != 0 &&
	    __atomic_compare_exchange_n(&scratch_owner, &owner, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		owner = 0;
	uint32_t zero = 0;
	if (scratch && owner == 0 &&
	    __atomic_compare_exchange_n(&scratch_owner, &zero, tid, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
		buf = scratch;
		bytes = scratch_bytes;
	} else {
		bytes = 1UL << 20;
		long p = G(SYS_mmap, 0, (long)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p < 0 && p > -4096)
			return fallback(nr, a);
		buf = (char *)p;
		mapped = 1;
	}
	char **envp = build_envp(tid, (char *const *)a[2], buf, bytes);
	long ret;
	const struct bs_sc_desc *d = &area->desc[nr];
	uint64_t max = max_record(d);
	int in = envp && r && busy_tid != tid;
	if (in) {
		busy_tid = tid; /* to the end: the room for both records is ours */
		in = room_for(r, max, 2);
		if (!in)
			busy_tid = 0;
	}
	if (!envp) {
		ret = fallback(nr, a);
	} else if (!in) {
		count(&area->fallbacks);
		ret = bs_raw_syscall(nr, a[0], a[1], (long)envp, 0, 0, 0);
	} else {
		struct reservation v;
		if (stage(r, max, &v)) {
			fill_fixed(v.f, tid, nr, a, 0, 0);
			put_paths(&v, tid, d, a, 0, sbuf);
			end_string(&v, BS_IP_RESULT, v.cur, 0, 0);
			commit(&v, BS_IP_REC_EXEC);
		}
		/* Left set: a vfork child that execs leaves its own tid there,
		 * which no thread of the parent has. */
		ret = gate(nr, a[0], a[1], (long)envp, 0, 0, 0);
		if (stage(r, max, &v)) {
			fill_fixed(v.f, tid, nr, a, ret, 0);
			put_paths(&v, tid, d, a, path_copied(ret), sbuf);
			end_string(&v, BS_IP_RESULT, v.cur, 0, 0);
			if (commit(&v, BS_IP_REC_FILE))
				count(&area->handled_calls);
		}
		busy_tid = 0;
	}
	if (mapped)
		G2(SYS_munmap, buf, bytes);
	else
		__atomic_store_n(&scratch_owner, 0, __ATOMIC_RELEASE);
	return ret;
}

/* ---------------------------------------------------------------- init */

#define SITE_LEN 7
#define STUB_LEN 64

struct object {
	const char *name;
	uintptr_t base;
	const ElfW(Phdr) *phdr;
	int phnum;
	int is_libc;
};

static struct object objects[2];
static int nobjects;
static uintptr_t lowest_lib = UINTPTR_MAX;
static uintptr_t self_base;
static const char *self_name;

static int collect(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	uintptr_t interp = (uintptr_t)data;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	for (int i = 0; i < info->dlpi_phnum; ++i) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (uintptr_t)&collect >= lo && (uintptr_t)&collect < lo + ph->p_memsz) {
			self_base = info->dlpi_addr;
			self_name = name;
		}
	}
	const char *base = name;
	for (const char *p = name; *p; ++p)
		if (*p == '/')
			base = p + 1;
	int is_libc = strcmp(base, "libc.so.6") == 0;
	/* ld.so is left alone: after the program starts it opens files only
	 * for dlopen, rarer than the time patching it takes in every image
	 * (~0.25 ms here). */
	(void)interp;
	if (is_libc && nobjects < 2) {
		struct object *o = &objects[nobjects++];
		o->name = name;
		o->base = info->dlpi_addr;
		o->phdr = info->dlpi_phdr;
		o->phnum = info->dlpi_phnum;
		o->is_libc = is_libc;
		if (o->base < lowest_lib)
			lowest_lib = o->base; /* the stubs go below the lowest we patch */
	}
	return 0;
}

/* The length of a register set-up instruction the compiler put between
 * the mov to %eax and the syscall (glibc's __open_nocancel: "mov %rdi,%rsi;
 * mov $AT_FDCWD,%edi"), or 0 if p is not one: a register-to-register mov
 * or xor, or a mov of a 32-bit immediate, writing neither %eax (the stub
 * sets it first) nor touching %rsp (the stub moves it). They are copied
 * into the stub as they are: none depends on where it runs. */
static int setup_len(const unsigned char *p)
{
	int rex = (p[0] & 0xf0) == 0x40;
	const unsigned char *q = p + rex;
	int r = rex && (p[0] & 4) ? 8 : 0, b = rex && (p[0] & 1) ? 8 : 0;
	if ((q[0] == 0x89 || q[0] == 0x8b || q[0] == 0x31) && q[1] >= 0xc0) {
		int reg = ((q[1] >> 3) & 7) | r, rm = (q[1] & 7) | b;
		int dest = q[0] == 0x8b ? reg : rm;
		return dest == 0 || reg == 4 || rm == 4 ? 0 : rex + 2;
	}
	if (q[0] >= 0xb8 && q[0] <= 0xbf && !(rex && (p[0] & 8))) {
		int dest = (q[0] - 0xb8) | b;
		return dest == 0 || dest == 4 ? 0 : rex + 5;
	}
	return 0;
}

#define SETUP_MAX 16 /* bytes of set-up instructions a site may have */

/* A site at p: "mov $nr,%eax" (b8 nr nr 00 00), up to three set-up
 * instructions, "syscall" (0f 05), with handled[nr]. Returns nr and the
 * set-up bytes in *extra, or -1. */
static int site_at(const unsigned char *p, const unsigned char *end, int *extra)
{
	if (end - p < 7 || p[0] != 0xb8 || p[3] != 0 || p[4] != 0)
		return -1;
	int nr = p[1] | p[2] << 8;
	if (nr >= BS_IP_MAX_NR || !area->handled[nr])
		return -1;
	int x = 0;
	for (int k = 0; k <= 3; ++k) {
		if (end - (p + 5 + x) < 2)
			return -1;
		if (p[5 + x] == 0x0f && p[6 + x] == 0x05) {
			*extra = x;
			return nr;
		}
		if (k == 3 || end - (p + 5 + x) < 7)
			return -1;
		int n = setup_len(p + 5 + x);
		if (n == 0 || x + n > SETUP_MAX)
			return -1;
		x += n;
	}
	return -1;
}

/* A plan's entry: the site's offset, and its set-up bytes in the top 8 bits. */
#define SITE_OFF(e) ((e) & 0xffffffu)
#define SITE_EXTRA(e) ((e) >> 24)

/* The plan for o: its sites (offsets from o->base) into sites[], their
 * count returned. */
static uint32_t build_plan(const struct object *o, uint32_t *sites)
{
	uint32_t n = 0;
	for (int s = 0; s < o->phnum; ++s) {
		const ElfW(Phdr) *ph = &o->phdr[s];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_filesz < SITE_LEN)
			continue;
		const unsigned char *text = (const unsigned char *)(o->base + ph->p_vaddr);
		size_t len = ph->p_filesz;
		/* A bitmap of the syscall instruction of each site (byte 5).
		 * A jump that lands there would run the syscall with %eax set
		 * elsewhere, which the patch would skip; one landing on bytes
		 * 1-4 or 6 would run half an instruction in the original too,
		 * which compiled code never does (and the scan of every byte
		 * offset finds such "targets" in the middle of other
		 * instructions: on Debian 12's libc one excluded execve). */
		size_t bm_bytes = (len + 7) / 8;
		unsigned char *inside = calloc(bm_bytes, 1);
		if (!inside)
			return 0;
		uint32_t first = n;
		for (size_t i = 0; i + SITE_LEN <= len && n < BS_IP_MAX_SITES; ++i) {
			int extra = 0;
			if (site_at(text + i, text + len, &extra) < 0 || ph->p_vaddr + i > 0xffffff)
				continue;
			sites[n++] = (uint32_t)(ph->p_vaddr + i) | (uint32_t)extra << 24;
			/* The set-up instructions and the syscall: no jump may land on them. */
			for (size_t k = i + 5; k < i + 5 + (size_t)extra + 2; ++k)
				inside[k / 8] |= (unsigned char)(1u << (k % 8));
		}
		/* Every byte as the start of a direct jump or call: a target
		 * inside a site excludes it. */
		unsigned char *hit = calloc(bm_bytes, 1);
		if (!hit) {
			free(inside);
			return 0;
		}
		for (size_t i = 0; i + 2 <= len; ++i) {
			unsigned char b = text[i];
			int64_t target = -1;
			if (b == 0xeb || (b >= 0x70 && b <= 0x7f) || (b >= 0xe0 && b <= 0xe3))
				target = (int64_t)i + 2 + (int8_t)text[i + 1];
			if (target >= 0 && (uint64_t)target < len && (inside[target / 8] >> (target % 8) & 1))
				hit[target / 8] |= (unsigned char)(1u << (target % 8));
			target = -1;
			if ((b == 0xe8 || b == 0xe9) && i + 5 <= len) {
				int32_t rel;
				memcpy(&rel, text + i + 1, 4);
				target = (int64_t)i + 5 + rel;
			} else if (b == 0x0f && i + 6 <= len && text[i + 1] >= 0x80 && text[i + 1] <= 0x8f) {
				int32_t rel;
				memcpy(&rel, text + i + 2, 4);
				target = (int64_t)i + 6 + rel;
			}
			if (target >= 0 && (uint64_t)target < len && (inside[target / 8] >> (target % 8) & 1))
				hit[target / 8] |= (unsigned char)(1u << (target % 8));
		}
		uint32_t w = first;
		for (uint32_t k = first; k < n; ++k) {
			size_t i = SITE_OFF(sites[k]) - ph->p_vaddr;
			int bad = 0;
			for (size_t j = i + 5; j < i + 5 + SITE_EXTRA(sites[k]) + 2; ++j)
				bad |= hit[j / 8] >> (j % 8) & 1;
			if (!bad)
				sites[w++] = sites[k];
		}
		n = w;
		free(inside);
		free(hit);
	}
	return n;
}

/* The plan for o, from the area or built. */
static uint32_t plan_for(const struct object *o, uint32_t *sites)
{
	struct statx sx;
	if (G5(SYS_statx, AT_FDCWD, o->name, 0, STATX_INO | STATX_SIZE | STATX_MTIME, &sx) != 0)
		return build_plan(o, sites);
	uint64_t dev = (uint64_t)sx.stx_dev_major << 32 | sx.stx_dev_minor;
	uint64_t mtime = (uint64_t)sx.stx_mtime.tv_sec * 1000000000ULL + sx.stx_mtime.tv_nsec;
	for (int i = 0; i < BS_IP_MAX_PLANS; ++i) {
		struct bs_ip_plan *p = &area->plans[i];
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) == 2 && p->dev == dev && p->ino == sx.stx_ino &&
		    p->size == sx.stx_size && p->mtime_ns == mtime) {
			uint32_t n = p->nsites < BS_IP_MAX_SITES ? p->nsites : BS_IP_MAX_SITES;
			for (uint32_t k = 0; k < n; ++k)
				sites[k] = p->site[k];
			return n;
		}
	}
	uint32_t n = build_plan(o, sites);
	for (int i = 0; i < BS_IP_MAX_PLANS; ++i) {
		struct bs_ip_plan *p = &area->plans[i];
		uint32_t zero = 0;
		if (!__atomic_compare_exchange_n(&p->state, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		p->dev = dev;
		p->ino = sx.stx_ino;
		p->size = sx.stx_size;
		p->mtime_ns = mtime;
		for (uint32_t k = 0; k < n; ++k)
			p->site[k] = sites[k];
		p->nsites = n;
		__atomic_store_n(&p->state, 2, __ATOMIC_RELEASE);
		break;
	}
	return n;
}

static int prot_of(uint32_t pf)
{
	return (pf & PF_R ? PROT_READ : 0) | (pf & PF_W ? PROT_WRITE : 0) | (pf & PF_X ? PROT_EXEC : 0);
}

static int64_t distance(uintptr_t a, uintptr_t b)
{
	return (int64_t)(a - b);
}

static int near(uintptr_t from, uintptr_t to)
{
	int64_t d = distance(to, from);
	return d > -(1LL << 31) + 4096 && d < (1LL << 31) - 4096;
}

/* Patches o's sites; returns how many. */
static uint32_t patch(const struct object *o, uint32_t *sites, uint32_t n)
{
	if (n == 0)
		return 0;
	size_t bytes = ((size_t)n * STUB_LEN + PAGE - 1) & ~(PAGE - 1);
	/* Stubs within reach of every site: just below the lowest library. */
	/* Where the hint is taken (the area, mapped since, is often there),
	 * the kernel's own choice: the highest free range below the hint,
	 * close to the libraries too. Checked below either way. */
	uintptr_t hint = (lowest_lib - bytes - (1UL << 20)) & ~(PAGE - 1);
	long stubs = G(SYS_mmap, (long)hint, (long)bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (stubs < 0 && stubs > -4096)
		stubs = G(SYS_mmap, (long)hint, (long)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stubs < 0 && stubs > -4096)
		return 0;
	for (uint32_t k = 0; k < n; ++k) {
		if (!near((uintptr_t)stubs, o->base + SITE_OFF(sites[k])) ||
		    !near((uintptr_t)stubs + bytes, o->base + SITE_OFF(sites[k]))) {
			G2(SYS_munmap, stubs, bytes);
			return 0;
		}
	}
	/* The stubs. */
	uint32_t w = 0;
	for (uint32_t k = 0; k < n; ++k) {
		const unsigned char *site = (const unsigned char *)(o->base + SITE_OFF(sites[k]));
		int extra = 0;
		int nr = site_at(site, site + SITE_LEN + SETUP_MAX, &extra);
		if (nr < 0 || (uint32_t)extra != SITE_EXTRA(sites[k]))
			continue; /* not what the plan said: left alone */
		unsigned char *s = (unsigned char *)stubs + (size_t)w * STUB_LEN;
		unsigned char *c = s;
		static const unsigned char lea_down[] = {0x48, 0x8d, 0x64, 0x24, 0x80};
		static const unsigned char lea_up[] = {0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00};
		memcpy(c, lea_down, sizeof lea_down), c += sizeof lea_down;
		*c++ = 0xb8;
		uint32_t nr32 = (uint32_t)nr;
		memcpy(c, &nr32, 4), c += 4;
		memcpy(c, site + 5, (size_t)extra), c += extra;
		*c++ = 0x49, *c++ = 0xbb;
		uint64_t entry = (uint64_t)(uintptr_t)&bs_entry;
		memcpy(c, &entry, 8), c += 8;
		*c++ = 0x41, *c++ = 0xff, *c++ = 0xd3;
		memcpy(c, lea_up, sizeof lea_up), c += sizeof lea_up;
		*c++ = 0xe9;
		int32_t back = (int32_t)distance(o->base + SITE_OFF(sites[k]) + SITE_LEN + (uintptr_t)extra,
						 (uintptr_t)(c + 4));
		memcpy(c, &back, 4), c += 4;
		while (c < s + STUB_LEN)
			*c++ = 0xcc;
		sites[w] = sites[k]; /* compacted: stub w is for sites[w] */
		++w;
	}
	if (G3(SYS_mprotect, stubs, bytes, PROT_READ | PROT_EXEC) != 0) {
		G2(SYS_munmap, stubs, bytes);
		return 0;
	}
	/* The jumps, segment by segment. */
	uint32_t done = 0;
	for (int s = 0; s < o->phnum; ++s) {
		const ElfW(Phdr) *ph = &o->phdr[s];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = (o->base + ph->p_vaddr) & ~(PAGE - 1);
		uintptr_t hi = (o->base + ph->p_vaddr + ph->p_memsz + PAGE - 1) & ~(PAGE - 1);
		int any = 0;
		for (uint32_t k = 0; k < w; ++k)
			if (SITE_OFF(sites[k]) >= ph->p_vaddr &&
			    SITE_OFF(sites[k]) + SITE_LEN + SITE_EXTRA(sites[k]) <= ph->p_vaddr + ph->p_filesz)
				any = 1;
		if (!any)
			continue;
		if (G3(SYS_mprotect, lo, hi - lo, prot_of(ph->p_flags) | PROT_WRITE) != 0)
			continue;
		for (uint32_t k = 0; k < w; ++k) {
			if (!(SITE_OFF(sites[k]) >= ph->p_vaddr &&
			      SITE_OFF(sites[k]) + SITE_LEN + SITE_EXTRA(sites[k]) <= ph->p_vaddr + ph->p_filesz))
				continue;
			unsigned char *site = (unsigned char *)(o->base + SITE_OFF(sites[k]));
			uintptr_t stub = (uintptr_t)stubs + (size_t)k * STUB_LEN;
			int32_t rel = (int32_t)distance(stub, (uintptr_t)site + 5);
			unsigned char jmp[5] = {0xe9};
			memcpy(jmp + 1, &rel, 4);
			/* One 5-byte store would be nicer; no thread runs yet. */
			for (int b = 0; b < 5; ++b)
				((volatile unsigned char *)site)[b] = jmp[b];
			++done;
		}
		G3(SYS_mprotect, lo, hi - lo, prot_of(ph->p_flags));
	}
	return done;
}

static char *concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);
	if (!s)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

/* Takes BS_IP_ENV out of environ, and our library out of LD_PRELOAD. */
static void hide(void)
{
	char **e = environ;
	if (!e)
		return;
	size_t w = 0;
	for (size_t i = 0; e[i]; ++i) {
		char *s = e[i];
		if (sprefix(s, BS_IP_ENV "="))
			continue;
		if (sprefix(s, "LD_PRELOAD=")) {
			char *out = malloc(strlen(s) + 1);
			if (!out) {
				e[w++] = s;
				continue;
			}
			memcpy(out, "LD_PRELOAD=", 11);
			char *o = out + 11;
			const char *p = s + 11;
			while (*p) {
				const char *q = p;
				while (*q && *q != ':' && *q != ' ')
					++q;
				int ours = (size_t)(q - p) == our_lib_len && strncmp(p, our_lib, our_lib_len) == 0;
				if (!ours && q > p) {
					if (o > out + 11)
						*o++ = ':';
					memcpy(o, p, (size_t)(q - p));
					o += q - p;
				}
				p = *q ? q + 1 : q;
			}
			*o = 0;
			if (o == out + 11) {
				free(out);
				continue;
			}
			s = out;
		}
		e[w++] = s;
	}
	e[w] = NULL;
}

/* Our library as LD_PRELOAD names it: the entry whose loaded name is ours
 * (ld.so keeps the names as given), else whose last component is. */
static void find_our_name(const char *preload)
{
	const char *p = preload;
	const char *base = self_name;
	for (const char *c = self_name; *c; ++c)
		if (*c == '/')
			base = c + 1;
	while (p && *p) {
		const char *q = p;
		while (*q && *q != ':' && *q != ' ')
			++q;
		size_t len = (size_t)(q - p);
		const char *b = p;
		for (const char *c = p; c < q; ++c)
			if (*c == '/')
				b = c + 1;
		if ((len == strlen(self_name) && strncmp(p, self_name, len) == 0) ||
		    ((size_t)(q - b) == strlen(base) && strncmp(b, base, (size_t)(q - b)) == 0)) {
			our_lib = strndup(p, len);
			our_lib_len = len;
			return;
		}
		p = *q ? q + 1 : q;
	}
	our_lib = self_name;
	our_lib_len = strlen(self_name);
}

/* Whether this image sees names as the supervisor does: the same root
 * directory, and the same pid namespace as the /proc it reads (its tids are
 * the ones the tracer knows). */
static int same_world(const struct bs_ip_area *a)
{
	struct stat st;
	if (G4(SYS_newfstatat, AT_FDCWD, (long)"/", (long)&st, 0) != 0 || (uint64_t)st.st_dev != a->root_dev ||
	    (uint64_t)st.st_ino != a->root_ino)
		return 0;
	char buf[32];
	long n = G3(SYS_readlink, (long)"/proc/self", (long)buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	long pid = 0;
	for (long i = 0; i < n; ++i) {
		if (buf[i] < '0' || buf[i] > '9')
			return 0;
		pid = pid * 10 + (buf[i] - '0');
	}
	return pid == G0(SYS_getpid);
}

/* The syscall, not the vDSO: a program that never reads the clock would
 * otherwise fault in the vDSO's pages for us (two page faults, ~10 us each
 * on these VMs). */
static uint64_t now_ns(void)
{
	struct timespec ts;
	bs_raw_syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0, 0, 0, 0);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void start(const char *path);

__attribute__((constructor(101))) static void bs_init(void)
{
	const char *path = getenv(BS_IP_ENV);
	if (!path)
		return;
	uint64_t t0 = now_ns();
	start(path);
	if (area)
		__atomic_fetch_add(&area->init_ns, now_ns() - t0, __ATOMIC_RELAXED);
}

static void start(const char *path)
{
	/* The gate: while it is not there, nothing else happens. */
	/* The gate and, after it, the page of flags (inproc_abi.h). */
	void *g = mmap((void *)BS_IP_GATE_ADDR, 2 * BS_IP_GATE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (g != (void *)BS_IP_GATE_ADDR) {
		if (g != MAP_FAILED)
			munmap(g, 2 * BS_IP_GATE_SIZE);
		return;
	}
	memcpy(g, bs_gate_template, (size_t)(bs_gate_template_end - bs_gate_template));
	if (mprotect(g, BS_IP_GATE_SIZE, PROT_READ | PROT_EXEC) != 0) {
		munmap(g, 2 * BS_IP_GATE_SIZE);
		return;
	}
	gate = (gate_fn)(uintptr_t)g;

	long fd = G4(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	/* Mapped whole at once, its size from fstat: the header's page is
	 * faulted in once. */
	struct stat fst;
	struct bs_ip_area *a = NULL;
	if (G2(SYS_fstat, fd, &fst) == 0 && (uint64_t)fst.st_size >= sizeof(struct bs_ip_area)) {
		uint64_t size = (uint64_t)fst.st_size;
		long q = G(SYS_mmap, 0, (long)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (!(q < 0 && q > -4096)) {
			a = (struct bs_ip_area *)q;
			if (a->magic != BS_IP_MAGIC || a->version != BS_IP_VERSION || a->size != size) {
				G2(SYS_munmap, q, size);
				a = NULL;
			}
		}
	}
	G1(SYS_close, fd);
	if (!a)
		return;
	if (a->disabled || !same_world(a)) {
		count(&a->refused);
		G2(SYS_munmap, a, a->size);
		return;
	}

	dl_iterate_phdr(collect, (void *)getauxval(AT_BASE));
	if (!self_name)
		return;
	const char *preload = getenv("LD_PRELOAD");
	find_our_name(preload);
	env_area = concat(BS_IP_ENV "=", path);
	env_preload = concat("LD_PRELOAD=", our_lib);
	if (!env_area || !env_preload || !our_lib)
		return;
	scratch_bytes = 1UL << 20;
	long s = G(SYS_mmap, 0, (long)scratch_bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	scratch = s < 0 && s > -4096 ? NULL : (char *)s;
	area = a;

	uint32_t *sites = malloc(sizeof(uint32_t) * BS_IP_MAX_SITES);
	if (sites) {
		for (int i = 0; i < nobjects; ++i) {
			uint32_t n = plan_for(&objects[i], sites);
			uint32_t done = patch(&objects[i], sites, n);
			__atomic_fetch_add(&a->sites, done, __ATOMIC_RELAXED);
		}
		free(sites);
	}
	count(&a->images);
	hide();
}
