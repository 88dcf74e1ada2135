/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * opensnoop.h - records shared by opensnoop.bpf.c and opensnoop/event.rs.
 *
 * A record is a 64-byte struct osnp_event header followed by the path (path_len bytes,
 * NUL included); the ring buffer's record length covers both, so a short path costs a short
 * record. Fields are as narrow as their values: flags above bit 31 and modes above 07777
 * are refused by the kernel (EINVAL) and are cut here.
 */
#ifndef __OPENSNOOP_H__
#define __OPENSNOOP_H__

#define OSNP_PATH_CAP 4096 /* PATH_MAX */

enum osnp_syscall {
	OSNP_OPEN = 0,
	OSNP_OPENAT = 1,
	OSNP_OPENAT2 = 2,
};

/* osnp_filters */
#define OSNP_FILTER_PID 0x01    /* thread group */
#define OSNP_FILTER_TID 0x02
#define OSNP_FILTER_UID 0x04
#define OSNP_FILTER_FAILED 0x08 /* only failed opens */
#define OSNP_FILTER_CONTAINER 0x10 /* cgroup verdicts (ebpfctl_cgroup_filter) */

/* What sys_enter_* saw, kept per thread until sys_exit_*. */
struct osnp_args {
	const char *path;
	__u64 flags;
	__u64 mode;
	__s32 dfd;
	__u16 syscall;
	__u16 active;     /* set at entry, cleared at exit */
};

struct osnp_event {
	__u64 time_ns;    /* bpf_ktime_get_ns() at the call's return */
	__u64 cgroup_id;  /* bpf_get_current_cgroup_id() */
	__s32 ret;        /* fd, or -errno */
	__u32 flags;      /* open flags (O_*; every valid one fits 32 bits) */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 dfd;        /* directory fd for relative paths (AT_FDCWD = -100) */
	__u16 mode;       /* S_I* permission bits (07777) */
	__u16 path_len;   /* bytes, including the NUL */
	__u8 syscall;     /* enum osnp_syscall */
	__u8 path_trunc;  /* the path filled OSNP_PATH_CAP or could not be read */
	__u8 pad[2];
	char comm[16];
	char path[OSNP_PATH_CAP];
};

#endif /* __OPENSNOOP_H__ */
