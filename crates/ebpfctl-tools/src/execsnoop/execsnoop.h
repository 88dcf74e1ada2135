/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * execsnoop.h - records shared by execsnoop.bpf.c and execsnoop/event.rs.
 *
 * Every record starts with a struct esnp_head; `size` is the record's length in bytes, so
 * a record costs the ring buffer what it carries (its strings), not a worst case.
 */
#ifndef __EXECSNOOP_H__
#define __EXECSNOOP_H__

#define ESNP_MAX_ARGS_CAP 60      /* --max-args upper bound */
#define ESNP_ARGS_REGION 16384    /* filename + args live in data[0 .. ESNP_ARGS_REGION) */
#define ESNP_ARG_LEN_CAP 4096     /* one argument read, including its NUL */
#define ESNP_FILENAME_CAP 512     /* the path passed to execve, including its NUL */
#define ESNP_NAME_CAP 256         /* one path component of the resolved executable */
#define ESNP_EXE_CAP 4096         /* all components of the resolved executable */
#define ESNP_EXE_DEPTH 32         /* directory levels walked */
#define ESNP_DATA_CAP (ESNP_ARGS_REGION + ESNP_EXE_CAP + ESNP_NAME_CAP)

enum esnp_kind {
	ESNP_EXEC = 1, /* an execve/execveat returned (ret 0 or -errno) */
	ESNP_EXIT = 2, /* the last thread of a process exited */
};

/* esnp_exec.flags */
#define ESNP_F_EXECVEAT 0x01      /* execveat, not execve */
#define ESNP_F_ARGS_TRUNC 0x02    /* more arguments than max_args, the args region filled, or
                                   * an argument could not be read */
#define ESNP_F_ARG_TRUNC 0x04     /* at least one argument longer than arg_len */
#define ESNP_F_FILENAME_TRUNC 0x08
#define ESNP_F_EXE_TRUNC 0x10     /* deeper than ESNP_EXE_DEPTH or longer than ESNP_EXE_CAP */

/* esnp_filters */
#define ESNP_FILTER_UID 0x01
#define ESNP_FILTER_PPID 0x02
#define ESNP_FILTER_CGROUP 0x04
#define ESNP_FILTER_FAILED 0x08   /* only failed execs; exits are not traced */
#define ESNP_FILTER_CONTAINER 0x10 /* cgroup verdicts (ebpfctl_cgroup_filter) */

struct esnp_head {
	__u32 kind;
	__u32 size;
};

struct esnp_exec {
	struct esnp_head head;
	__u64 enter_ns;   /* bpf_ktime_get_ns() at syscall entry */
	__u64 exit_ns;    /* ... at syscall exit */
	__u64 cgroup_id;
	__s32 ret;        /* 0 or -errno */
	__u32 pid;        /* thread group id */
	__u32 tid;        /* the calling thread */
	__u32 ppid;
	__u32 uid;        /* after the exec (set-uid binaries change it) */
	__u32 gid;
	__u32 argc;       /* arguments stored */
	__u16 filename_len; /* bytes, including the NUL */
	__u16 args_len;   /* bytes of NUL-terminated arguments */
	__u16 exe_len;    /* bytes of NUL-terminated components, leaf first */
	__u8 flags;
	__u8 exe_depth;   /* components stored */
	char comm[16];
	char parent_comm[16];
	/* filename | args | exe components; only the used part is sent */
	char data[ESNP_DATA_CAP];
};

struct esnp_exit {
	struct esnp_head head;
	__u64 exit_ns;
	__u64 start_ns;   /* task start, CLOCK_MONOTONIC like bpf_ktime_get_ns() */
	__u64 cgroup_id;
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__s32 exit_code;  /* wait status: (status << 8) | signal */
	__u32 pad;
	char comm[16];
	char parent_comm[16];
};

#endif /* __EXECSNOOP_H__ */
