/* The struct the uprobe example copies out of examples/target/target.c: every kind of member
 * the decoder handles. Shared by the probe (BPF) and the target (user space). */
#ifndef __EXAMPLE_TYPES_H__
#define __EXAMPLE_TYPES_H__

enum example_color { RED = 1, GREEN = 2, BLUE = 42 };

struct example_inner {
	__u16 port;
	__s8 delta;
};

struct example_sample {
	__u8 u8;
	__s8 s8;
	__u16 u16;
	__s16 s16;
	__u32 u32;
	__s32 s32;
	__u64 u64;
	__s64 s64;
	_Bool flag;
	enum example_color color;
	unsigned int bf_a : 3, bf_b : 5;
	int bf_c : 4;
	char name[16];
	__u16 arr[3];
	float f32;
	double f64;
	void *ptr;
	struct example_inner inner;
	union {
		__u32 as_u32;
		__u8 as_bytes[4];
	} un;
	ipv4_addr v4;
	ipv6_addr v6;
	l4_endpoint ep;
	errno_t err;
	signal_t sig;
	syscall_t sc;
	duration took;
	timestamp at;
	pid pid;
	comm who;
};

#endif
