// SPDX-License-Identifier: GPL-2.0-only
/*
 * fault-storm: a storm of stage-2 faults, to show Tandem's fault recovery.
 *
 *   fault-storm [COUNT]   default 20000 loads
 *
 * Maps a page of physical address space that Tandem gives this VM nothing
 * at (0x0c000000, between the GIC and the virtio windows) through /dev/mem
 * and loads from it COUNT times. Each load is a stage-2 fault: Tandem
 * injects a synchronous external abort, Linux sends SIGBUS, and the handler
 * here steps over the load. Tandem treats 10,000 such aborts within a second
 * as a crash and restarts the VM (on_crash = "restart"), so on Tandem this
 * normally never returns. Built like tandem-stats, against the kernel's
 * nolibc (the signal handler is installed with the raw system call).
 */

#ifndef NOLIBC
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#endif
#include <asm/unistd.h>
#include <asm/sigcontext.h>

#define SIGBUS_NR 7
#define SA_SIGINFO_FLAG 4
#define SA_RESTART_FLAG 0x10000000
#define UNMAPPED_IPA 0x0c000000UL

/* The kernel's struct sigaction for rt_sigaction (asm-generic, no sa_restorer needed on arm64). */
struct ksigaction {
	void (*handler)(int, void *, void *);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

/* arm64's struct ucontext (arch/arm64/include/uapi/asm/ucontext.h). */
struct kucontext {
	unsigned long uc_flags;
	void *uc_link;
	struct {
		void *ss_sp;
		int ss_flags;
		unsigned long ss_size;
	} uc_stack;
	unsigned long uc_sigmask;
	unsigned char unused[1024 / 8 - 8];
	struct sigcontext uc_mcontext;
};

static volatile long faults;

static void on_sigbus(int sig, void *info, void *uctx)
{
	struct kucontext *uc = uctx;

	(void)sig;
	(void)info;
	faults++;
	uc->uc_mcontext.pc += 4; /* step over the load */
}

int main(int argc, char **argv)
{
	struct ksigaction act = { on_sigbus, SA_SIGINFO_FLAG | SA_RESTART_FLAG, 0, 0 };
	long count = argc > 1 ? atol(argv[1]) : 20000, i;
	volatile unsigned int *page;
	int fd;

	if (my_syscall4(__NR_rt_sigaction, SIGBUS_NR, &act, 0, 8) != 0) {
		printf("fault-storm: cannot install the SIGBUS handler\n");
		return 1;
	}
	fd = open("/dev/mem", O_RDWR | O_SYNC);
	if (fd < 0) {
		printf("fault-storm: cannot open /dev/mem (CONFIG_DEVMEM?)\n");
		return 1;
	}
	page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, UNMAPPED_IPA);
	if (page == MAP_FAILED) {
		printf("fault-storm: cannot map 0x%lx\n", UNMAPPED_IPA);
		return 1;
	}
	printf("fault-storm: %ld loads from 0x%lx\n", count, UNMAPPED_IPA);
	for (i = 0; i < count; i++)
		(void)page[0];
	printf("fault-storm: %ld loads, %ld faults, and the VM still runs\n", count, faults);
	return 0;
}
