# Models arrive with the channels issue.
