"""Known-bad hash lists: the dataset matched against PDQ hashes of known abusive images (`match-hashes`)."""
