/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * state.bpf.c: the maps and tunables every kernel program shares. The other
 * objects declare them extern (state.bpf.h); `bpftool gen object` links them
 * into one object, so each exists once. Sizes marked "set by user space" are
 * adjusted by the loader before load (ring size, CPU count).
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct bs_sc_desc bs_sc_table[BS_SC_TABLE_SIZE] = {};
const volatile __u64 bs_wakeup_bytes = 1 << 20;
const volatile __u32 bs_fmode_created = 0x100000; /* FMODE_CREATED since Linux 4.19 */

BS_MAP_RINGS bs_rings SEC(".maps");
BS_MAP_PROCS bs_procs SEC(".maps");
BS_MAP_TASKS bs_tasks SEC(".maps");
BS_MAP_SCRATCH bs_scratch SEC(".maps");
BS_MAP_COUNTERS bs_counters SEC(".maps");
BS_MAP_GEN bs_gen SEC(".maps");
