from veil.cli import entry_point

if __name__ == "__main__":  # not again in worker processes, which import it under another name
    entry_point()
