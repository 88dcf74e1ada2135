// The observe benchmark's Go programs, standard library only:
//   bench serve ADDR   answers "ok" to every request
//   bench loop URL     sends 100 warm-up GETs over one keep-alive connection, prints
//                      "ready", then for each line N read on stdin sends N sequential GETs
//                      and prints their total elapsed nanoseconds; exits at end of input
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	switch os.Args[1] {
	case "serve":
		ln, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			panic(err)
		}
		fmt.Println("listening")
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	case "loop":
		url := os.Args[2]
		c := &http.Client{}
		for i := 0; i < 100; i++ {
			get(c, url)
		}
		fmt.Println("ready")
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			n, err := strconv.Atoi(strings.TrimSpace(in.Text()))
			if err != nil {
				panic(err)
			}
			start := time.Now()
			for i := 0; i < n; i++ {
				get(c, url)
			}
			fmt.Println(time.Since(start).Nanoseconds())
		}
	}
}

func get(c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
