//go:build wasip1 && !mini_hit

package main

func hit() {}
