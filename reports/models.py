# Models arrive with the reports issue.
