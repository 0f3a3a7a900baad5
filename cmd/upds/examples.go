package main

// examples are the Example sections of the commands' help, by command path: one table, so
// that every command has one (TestEveryCommandHasAnExample) wherever the command is defined.
// A command that sets its own Example keeps it.
var examples = map[string]string{
	"upds": `  upds init                      # start a BUILD.star for the Python project here
  upds run build                 # build the packages into dist/
  upds -C ~/src/shop run publish # the same in another directory`,
	"upds run": `  upds run build                 # build what "build" needs, then run it
  upds run bump-minor build      # tasks run in the order given
  upds run --dry-run publish     # what would be built, what is cached, what would run
  upds run -j 2 --keep-going build
  upds run --json build > report.json`,
	"upds tasks": `  upds tasks
  upds tasks --json | jq -r '.[].name'`,
	"upds graph": `  upds graph | dot -Tsvg > graph.svg
  upds graph --format mermaid build`,
	"upds version": `  upds version`,
	"upds bump": `  upds bump patch                # 1.4.2 -> 1.4.3
  upds bump minor                # 1.4.2 -> 1.5.0`,
	"upds inspect": `  upds inspect dist/hello_0.1.0_all.deb
  upds inspect --json dist/hello_0.1.0_all.deb | jq .control`,
	"upds clean": `  upds clean                     # remove dist/ and .upds/
  upds clean --cache-only        # remove .upds/ only`,
	"upds init": `  upds init
  DEBFULLNAME="Ann Example" DEBEMAIL=ann@example.com upds init --name shop`,
	"upds setup": `  sudo upds setup --repo https://apt.example.com --key key.asc hello-server
  upds setup --repo https://apt.example.com --key key.asc --host root@web1 --host root@web2 hello-server`,
	"upds audit": `  upds audit --repo repo         # this machine against a repository directory
  upds audit --repo https://apt.example.com --key key.asc --hosts servers.txt --json`,
	"upds repo": `  upds repo init repo
  upds repo publish repo
  upds repo serve repo --addr 127.0.0.1:8080`,
	"upds repo init": `  upds repo init repo
  upds repo init repo --url https://apt.example.com/ --arch amd64,all`,
	"upds repo publish": `  cp dist/*.deb repo/incoming/ && upds repo publish repo
  upds repo publish repo --keep 3 --json`,
	"upds repo watch": `  upds repo watch repo
  upds repo watch repo --keep 5 --interval 2s`,
	"upds repo serve": `  upds repo serve repo
  upds repo serve repo --addr 0.0.0.0:8080`,
	"upds completion": `  source <(upds completion bash)
  upds completion zsh > "${fpath[1]}/_upds"
  upds completion fish > ~/.config/fish/completions/upds.fish`,
	"upds completion bash": `  source <(upds completion bash)               # this shell
  upds completion bash > /etc/bash_completion.d/upds`,
	"upds completion zsh":        `  upds completion zsh > "${fpath[1]}/_upds"`,
	"upds completion fish":       `  upds completion fish > ~/.config/fish/completions/upds.fish`,
	"upds completion powershell": `  upds completion powershell | Out-String | Invoke-Expression`,
}
