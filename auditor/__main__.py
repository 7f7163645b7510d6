from auditor.cli import main

# Guarded: a process the crawl starts (spawn) imports this module again and must not run the CLI.
if __name__ == "__main__":
    main()
