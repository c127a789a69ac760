//go:build wasip1 && !mini_hit && !mini_mem

package main

func hit() {}
