/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* floor.bpf.c: an empty program on the tracepoint bsandbox uses for file
 * syscalls. What it costs every process is the floor for any tracer built on
 * syscall tracepoints; bench/micro.py measures bsandbox against it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	return 0;
}
