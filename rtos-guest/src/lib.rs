//! rtos-guest: a small real-time OS (in progress).
#![no_std]
